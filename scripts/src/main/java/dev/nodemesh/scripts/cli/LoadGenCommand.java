package dev.nodemesh.scripts.cli;

import dev.nodemesh.scripts.loadgen.LoadGen;
import dev.nodemesh.scripts.loadgen.LoadGenResult;
import java.io.PrintWriter;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code nodemesh loadgen}: a fixed-rate (open-loop) HTTP load generator for the benchmarks, since
 * neither wrk2 nor vegeta is packaged here. Prints a summary and, as its last line, one JSON
 * object.
 */
@Command(
    name = "loadgen",
    mixinStandardHelpOptions = true,
    description = {
      "Send GET requests at a fixed rate (open loop) and report latency from each request's"
          + " intended send time, so a stall counts for every request it holds back.",
      "The last line of the output is one JSON object (p50_us, p90_us, p99_us, p999_us, max_us,"
          + " achieved_rate, errors, ...)."
    })
final class LoadGenCommand implements Callable<Integer> {
  @Spec CommandSpec spec = CommandSpec.create();

  @Parameters(index = "0", paramLabel = "URL", description = "http://host[:port]/path")
  String url = "";

  @Option(
      names = {"-R", "--rate"},
      required = true,
      paramLabel = "REQ/S",
      description = "Intended requests per second.")
  double rate;

  @Option(
      names = {"-d", "--duration"},
      paramLabel = "DURATION",
      defaultValue = "5s",
      converter = ControlCommand.DurationConverter.class,
      description = "Measured period (default: ${DEFAULT-VALUE}).")
  Duration duration = Duration.ofSeconds(5);

  @Option(
      names = "--warmup",
      paramLabel = "DURATION",
      defaultValue = "1s",
      converter = ControlCommand.DurationConverter.class,
      description =
          "Unrecorded period at the same rate first (JIT of this JVM, the path's caches; default:"
              + " ${DEFAULT-VALUE}).")
  Duration warmup = Duration.ofSeconds(1);

  @Option(
      names = {"-c", "--connections"},
      paramLabel = "N",
      defaultValue = "4",
      description =
          "Kept-alive connections; with --new-connection the most open at once (default:"
              + " ${DEFAULT-VALUE}).")
  int connections = 4;

  @Option(
      names = "--h2c",
      description = "HTTP/2 over cleartext with prior knowledge instead of HTTP/1.1.")
  boolean h2c;

  @Option(
      names = {"-m", "--streams"},
      paramLabel = "M",
      defaultValue = "8",
      description =
          "With --h2c: most concurrent streams per connection (default: ${DEFAULT-VALUE}).")
  int streams = 8;

  @Option(
      names = "--new-connection",
      description = "HTTP/1.1 with Connection: close: a new TCP connection for every request.")
  boolean newConnection;

  @Option(
      names = "--drain",
      paramLabel = "DURATION",
      defaultValue = "5s",
      converter = ControlCommand.DurationConverter.class,
      description =
          "Wait this long after the last intended time for outstanding responses; the rest count"
              + " as timeouts (default: ${DEFAULT-VALUE}).")
  Duration drain = Duration.ofSeconds(5);

  @Option(names = "--json", paramLabel = "FILE", description = "Also write the JSON line to FILE.")
  @Nullable Path json;

  @Option(
      names = "--stop-file",
      paramLabel = "FILE",
      description =
          "End the schedule early once FILE exists (looked for every 100 ms); --duration is then"
              + " the longest run, and the summary counts what was scheduled until the stop.")
  @Nullable Path stopFile;

  @Override
  public Integer call() throws Exception {
    if (h2c && newConnection) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--h2c and --new-connection exclude each other");
    }
    LoadGen.Options opts;
    try {
      opts =
          new LoadGen.Options(
              new URI(url),
              h2c
                  ? LoadGen.Mode.H2C
                  : newConnection ? LoadGen.Mode.HTTP1_CLOSE : LoadGen.Mode.HTTP1,
              rate,
              duration,
              warmup,
              connections,
              streams,
              drain);
    } catch (URISyntaxException | IllegalArgumentException e) {
      throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
    }
    LoadGen gen = new LoadGen(opts);
    Thread watcher = stopFile == null ? null : watch(stopFile, gen);
    LoadGenResult r;
    try {
      r = gen.run();
    } catch (IllegalStateException e) {
      spec.commandLine().getErr().println("nodemesh loadgen: " + e.getMessage());
      return 1;
    } finally {
      if (watcher != null) {
        watcher.interrupt();
      }
    }
    PrintWriter out = spec.commandLine().getOut();
    out.print(r.text());
    out.println(r.json());
    out.flush();
    if (json != null) {
      Files.writeString(json, r.json() + "\n", StandardCharsets.UTF_8);
    }
    return 0;
  }

  /** A daemon thread that stops {@code gen} once {@code file} exists. */
  private static Thread watch(Path file, LoadGen gen) {
    Thread t =
        new Thread(
            () -> {
              try {
                while (!Files.exists(file)) {
                  Thread.sleep(100);
                }
                gen.stop();
              } catch (InterruptedException e) {
                // The run ended first.
              }
            },
            "loadgen-stop-file");
    t.setDaemon(true);
    t.start();
    return t;
  }
}
