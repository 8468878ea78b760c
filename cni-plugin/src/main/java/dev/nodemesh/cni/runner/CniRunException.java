package dev.nodemesh.cni.runner;

import dev.nodemesh.cni.spec.CniError;

/** A plugin in the chain failed: its CNI error (or a made-up one if it printed none) and stderr. */
public final class CniRunException extends Exception {
  private static final long serialVersionUID = 1L;

  private final String plugin;
  private final transient CniError error;
  private final String stderr;

  public CniRunException(String plugin, CniError error, String stderr) {
    super(
        plugin
            + ": code "
            + error.code()
            + ": "
            + error.msg()
            + (error.details().isEmpty() ? "" : " (" + error.details() + ")")
            + (stderr.isBlank() ? "" : "; stderr: " + stderr.strip()));
    this.plugin = plugin;
    this.error = error;
    this.stderr = stderr;
  }

  public String plugin() {
    return plugin;
  }

  public CniError error() {
    return error;
  }

  public String stderr() {
    return stderr;
  }
}
