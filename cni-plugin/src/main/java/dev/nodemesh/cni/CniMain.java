package dev.nodemesh.cni;

import dev.nodemesh.cni.plugin.InputLimits;
import dev.nodemesh.cni.plugin.Plugin;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The executable the container runtime runs: reads stdin (bounded by {@link InputLimits}), runs the
 * plugin with this process's environment, prints the result or error object on stdout and exits
 * with its status. Nothing else is printed on stdout, whatever fails: an exception or {@link Error}
 * the plugin did not turn into an error object becomes the catch-all code 999 here, and its trace
 * goes to stderr only.
 */
public final class CniMain {
  /**
   * Built before anything can fail, so printing it needs no allocation worth the name even after an
   * {@code OutOfMemoryError}; 1.0.0 is a version every runtime that can call us reads.
   */
  static final String FAILED =
      "{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"nodemesh plugin failed\","
          + "\"details\":\"see the plugin's stderr\"}";

  private CniMain() {}

  public static void main(String[] args) {
    Plugin.warmUp(System.getenv("CNI_COMMAND"));
    int exit = run();
    System.err.flush();
    // halt, not exit: nothing here needs a shutdown hook, and System.exit first sets up the JDK's
    // System.Logger to log the exit (a service lookup and a dozen classes) in a process that
    // lives for one call. stdout was flushed by run().
    Runtime.getRuntime().halt(exit);
  }

  /** Also the body of {@code nodemesh cni}. */
  public static int run() {
    return run(System.in, System.out, System.getenv());
  }

  /**
   * One call with this stdin, stdout and environment: {@link #run()}, and the training run for the
   * start-up cache ({@code StartupTraining}), which goes through here so that this class and its
   * path are in the cache too.
   */
  public static int run(InputStream in, OutputStream sink, Map<String, String> env) {
    PrintStream out = new PrintStream(sink, false, StandardCharsets.UTF_8);
    String failed = FAILED;
    int exit;
    String stdout;
    try {
      byte[] stdin = InputLimits.readStdin(in);
      Plugin.Response r = Plugin.standard().run(env, stdin);
      stdout = r.stdout();
      exit = r.exitCode();
    } catch (Throwable t) { // NOPMD: the one place where anything at all becomes an error object
      stdout = failed;
      exit = 1;
      try {
        System.err.println("nodemesh: plugin failed: " + t);
        t.printStackTrace(System.err);
      } catch (Throwable ignored) {
        // stderr is best effort; stdout below is what the runtime reads
      }
    }
    out.print(stdout);
    out.flush();
    return exit;
  }
}
