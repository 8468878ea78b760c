package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code nodemesh install-cni} end to end in temp dirs: install once, then uninstall. */
class InstallCniCommandTest {
  @TempDir Path tmp;

  @Test
  void installsOnceThenUninstalls() throws Exception {
    Path conf = Files.createDirectories(tmp.resolve("net.d"));
    Path lib = Files.createDirectories(tmp.resolve("lib"));
    Files.writeString(lib.resolve("a.jar"), "jar");
    Files.writeString(tmp.resolve("nodemesh-cni"), "#!/bin/sh\n");
    String original =
        "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": [{\"type\": \"bridge\"}]}";
    Files.writeString(conf.resolve("10.conflist"), original);
    String[] common = {
      "--cni-bin-dir", tmp.resolve("bin").toString(),
      "--cni-conf-dir", conf.toString(),
      "--plugin-wrapper", tmp.resolve("nodemesh-cni").toString(),
      "--plugin-lib", lib.toString(),
      "--exclude-namespace", "kube-system",
      "--exclude-namespace", "mesh-system",
    };
    String[] install = new String[common.length + 2];
    System.arraycopy(common, 0, install, 1, common.length);
    install[0] = "install-cni";
    install[install.length - 1] = "--no-watch";
    assertEquals(0, Main.commandLine().execute(install));
    assertEquals(original, Files.readString(conf.resolve("10.conflist")));
    String after = Files.readString(conf.resolve("10-nodemesh.conflist"));
    assertTrue(after.contains("\"nodemesh\"") && after.contains("mesh-system"), after);
    assertTrue(Files.exists(tmp.resolve("bin/nodemesh")));

    install[install.length - 1] = "--uninstall";
    assertEquals(0, Main.commandLine().execute(install));
    assertEquals(original, Files.readString(conf.resolve("10.conflist")));
    assertFalse(Files.exists(conf.resolve("10-nodemesh.conflist")));
    assertFalse(Files.exists(tmp.resolve("bin/nodemesh")));
  }

  @Test
  void refusesAConfigItDoesNotUnderstand() throws Exception {
    Path conf = Files.createDirectories(tmp.resolve("net.d"));
    Path lib = Files.createDirectories(tmp.resolve("lib"));
    Files.writeString(tmp.resolve("nodemesh-cni"), "#!/bin/sh\n");
    Files.writeString(conf.resolve("10.conflist"), "{\"plugins\": 3}");
    assertEquals(
        1,
        Main.commandLine()
            .execute(
                "install-cni",
                "--cni-bin-dir",
                tmp.resolve("bin").toString(),
                "--cni-conf-dir",
                conf.toString(),
                "--plugin-wrapper",
                tmp.resolve("nodemesh-cni").toString(),
                "--plugin-lib",
                lib.toString(),
                "--no-watch"));
    assertEquals("{\"plugins\": 3}", Files.readString(conf.resolve("10.conflist")));
  }
}
