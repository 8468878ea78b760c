package dev.nodemesh.bpf.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Network namespaces a test creates and always removes: named {@code nmt<run>-<name>} with a
 * per-run prefix so parallel runs and leftovers are told apart. Close it in a finally/@AfterEach.
 */
public final class TestNetns implements AutoCloseable {
  private static final String RUN =
      Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xffff));

  private final String name;

  private TestNetns(String name) {
    this.name = name;
  }

  /** A prefix unique to this JVM run, for links and other names a test makes. */
  public static String runPrefix() {
    return "nmt" + RUN;
  }

  public static TestNetns create(String suffix) throws IOException {
    String name = runPrefix() + "-" + suffix;
    sh("ip", "netns", "add", name);
    TestNetns ns = new TestNetns(name);
    ns.exec("ip", "link", "set", "lo", "up");
    return ns;
  }

  public String name() {
    return name;
  }

  public Path path() {
    return Path.of("/var/run/netns", name);
  }

  /** Runs a command inside this namespace and returns its output; non-zero exit throws. */
  public String exec(String... cmd) throws IOException {
    List<String> full = new ArrayList<>(List.of("ip", "netns", "exec", name));
    full.addAll(Arrays.asList(cmd));
    return sh(full.toArray(String[]::new));
  }

  public static String sh(String... cmd) throws IOException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", cmd) + " timed out");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
    if (p.exitValue() != 0) {
      throw new IOException(String.join(" ", cmd) + " exited " + p.exitValue() + ": " + out);
    }
    return out;
  }

  /** Deletes the namespace; a no-op when it is already deleted (a test may delete it early). */
  @Override
  public void close() throws IOException {
    if (java.nio.file.Files.exists(path())) {
      sh("ip", "netns", "delete", name);
    }
  }
}
