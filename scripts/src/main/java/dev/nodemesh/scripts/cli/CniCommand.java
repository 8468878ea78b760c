package dev.nodemesh.scripts.cli;

import dev.nodemesh.cni.CniMain;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/**
 * {@code nodemesh cni}: the CNI plugin, for a runtime configured to exec the launcher (the
 * standalone {@code cni-plugin/bin/nodemesh-cni} starts faster: fewer jars, its AOT cache). Exit
 * status and stdout are the plugin's, so it follows the CNI contract, not picocli's codes.
 */
@Command(
    name = "cni",
    mixinStandardHelpOptions = true,
    description = {
      "Run the nodemesh CNI plugin: CNI_* environment and network config on stdin,",
      "result or CNI error object on stdout."
    })
final class CniCommand implements Callable<Integer> {
  @Override
  public Integer call() throws Exception {
    return CniMain.run();
  }
}
