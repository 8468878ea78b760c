package dev.nodemesh.scripts.cli;

import dev.nodemesh.proxy.StartupTimeline;
import java.util.Arrays;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The {@code nodemesh} launcher: one command, a subcommand per role. Exit codes: 0 success, 1
 * failure, 2 usage error (picocli's convention, kept for every subcommand).
 */
@Command(
    name = "nodemesh",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "A sidecar-less service mesh: one proxy per node.",
    subcommands = {
      ControlCommand.class,
      ProxyCommand.class,
      LocalCommand.class,
      CniCommand.class,
      InstallCniCommand.class,
      LoadGenCommand.class
    })
public final class Main implements Runnable {
  @Spec CommandSpec spec;

  Main() {
    spec = CommandSpec.create();
  }

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "Missing required subcommand");
  }

  /** The command line with the settings every entry point (main, tests) shares. */
  public static CommandLine commandLine() {
    return new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true);
  }

  /**
   * The node proxy's command alone, as {@code nodemesh proxy}: what {@link #main} runs for {@code
   * nodemesh proxy ...}. Building the whole command tree reflects over every subcommand's options
   * and loads their classes (control, local and its subcommands, loadgen, install-cni): about half
   * a second of the proxy's start to {@code /ready} on two cores (issue 19), none of which the
   * proxy needs. Same settings, usage line and exit codes as the proxy under {@link
   * #commandLine()}.
   */
  static CommandLine proxyCommandLine() {
    CommandLine cl = new CommandLine(new ProxyCommand()).setCaseInsensitiveEnumValuesAllowed(true);
    cl.setCommandName("nodemesh proxy");
    return cl;
  }

  public static void main(String[] args) {
    // Start-up timing of the node proxy (issue 19); a field write for the other commands.
    StartupTimeline.PROCESS.mark("main");
    int status =
        args.length > 0 && args[0].equals("proxy")
            ? proxyCommandLine().execute(Arrays.copyOfRange(args, 1, args.length))
            : commandLine().execute(args);
    System.exit(status);
  }

  /** Reports the jar's implementation version when there is one. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Main.class.getPackage().getImplementationVersion();
      return new String[] {"nodemesh " + (v == null ? "0.1.0-SNAPSHOT" : v)};
    }
  }
}
