package dev.nodemesh.scripts.cli;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.source.KubernetesSource;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.control.source.Source;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code nodemesh control}: runs the control plane in the foreground until SIGTERM/SIGINT. Only
 * turns flags into a source and a {@link ControlPlane}.
 */
@Command(
    name = "control",
    mixinStandardHelpOptions = true,
    description = "Run the control plane (xDS server) in the foreground until SIGTERM or SIGINT.")
final class ControlCommand implements Callable<Integer> {
  static final String DIR_PREFIX = "dir:";

  @Spec CommandSpec spec = CommandSpec.create();

  @Option(
      names = "--source",
      required = true,
      paramLabel = "kubernetes|dir:PATH",
      description =
          "Where resources come from: the cluster (in-cluster config or ~/.kube/config), or a"
              + " directory of Kubernetes-shaped YAML.")
  String source = "";

  @Option(
      names = "--listen",
      paramLabel = "HOST:PORT",
      description = "xDS (gRPC) address (default: ${DEFAULT-VALUE}).",
      defaultValue = "0.0.0.0:15010",
      converter = ProxyCommand.HostPortConverter.class)
  InetSocketAddress listen = new InetSocketAddress("0.0.0.0", 15010);

  @Option(
      names = "--admin",
      paramLabel = "HOST:PORT",
      description = "/healthz, /ready and /metrics (default: ${DEFAULT-VALUE}).",
      defaultValue = "127.0.0.1:15014",
      converter = ProxyCommand.HostPortConverter.class)
  InetSocketAddress admin = new InetSocketAddress("127.0.0.1", 15014);

  @Option(
      names = "--debounce-ms",
      paramLabel = "MS",
      description = "Changes within this window become one push (default: ${DEFAULT-VALUE}).",
      defaultValue = "100")
  long debounceMillis = 100;

  @Option(
      names = "--resync-s",
      paramLabel = "S",
      description = "Kubernetes informer resync period, 0 = none (default: ${DEFAULT-VALUE}).",
      defaultValue = "300")
  long resyncSeconds = 300;

  /** Checked apart from running, so a bad flag is a usage error (exit 2) before anything starts. */
  Source makeSource() {
    if (debounceMillis < 0 || resyncSeconds < 0) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--debounce-ms and --resync-s must be >= 0");
    }
    if (source.equals("kubernetes")) {
      return new KubernetesSource(new KubernetesClientBuilder().build(), resyncSeconds * 1000);
    }
    if (source.startsWith(DIR_PREFIX) && source.length() > DIR_PREFIX.length()) {
      return new LocalSource(Path.of(source.substring(DIR_PREFIX.length())), 1000);
    }
    throw new CommandLine.ParameterException(
        spec.commandLine(), "--source must be kubernetes or dir:PATH, got '" + source + "'");
  }

  @Override
  public Integer call() throws Exception {
    Source s = makeSource();
    ControlPlane cp = ControlPlane.start(s, listen, admin, Duration.ofMillis(debounceMillis));
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    cp.close();
                  } catch (Exception e) {
                    System.err.println("nodemesh control: stopping: " + e);
                  }
                  stopped.countDown();
                },
                "nodemesh-shutdown"));
    stopped.await();
    return 0;
  }
}
