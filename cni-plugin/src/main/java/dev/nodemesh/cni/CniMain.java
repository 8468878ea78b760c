package dev.nodemesh.cni;

import dev.nodemesh.cni.plugin.Plugin;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The executable the container runtime runs: reads stdin whole, runs the plugin with this process's
 * environment, prints the result or error object on stdout and exits with its status. Nothing else
 * is printed on stdout; diagnostics go to stderr.
 */
public final class CniMain {
  // Held so the setting outlives GC of the logger. grpc's shaded Netty warns on every Unix-socket
  // channel that SO_KEEPALIVE does not apply; the runtime logs a plugin's stderr, so keep it quiet.
  private static final Logger NETTY_BOOTSTRAP =
      Logger.getLogger("io.grpc.netty.shaded.io.netty.bootstrap");

  private CniMain() {}

  public static void main(String[] args) throws IOException {
    System.exit(run());
  }

  /** Also the body of {@code nodemesh cni}. */
  public static int run() throws IOException {
    NETTY_BOOTSTRAP.setLevel(Level.SEVERE);
    byte[] stdin = System.in.readAllBytes();
    Plugin.Response r = Plugin.standard().run(System.getenv(), stdin);
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    out.print(r.stdout());
    out.flush();
    return r.exitCode();
  }
}
