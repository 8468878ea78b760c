package dev.nodemesh.cni.install;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.TestJson;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** install-cni's {@code --bundle-java}: a node without Java gets the image's runtime. */
class BundledJavaTest {
  @TempDir Path tmp;

  @Test
  void theRuntimeIsCopiedIntoTheLibDirAndLinkedRelativelyAndUninstallRemovesIt() throws Exception {
    Path home = Files.createDirectories(tmp.resolve("image/java-home/bin"));
    Path java = home.resolve("java");
    Files.writeString(java, "#!/bin/sh\necho bundled \"$@\"\n");
    Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.createDirectories(tmp.resolve("image/java-home/lib"));
    Files.writeString(tmp.resolve("image/java-home/lib/modules"), "modules");
    Files.createSymbolicLink(
        tmp.resolve("image/java-home/lib/link"), Path.of("modules")); // copied as a link
    Path src = Files.createDirectories(tmp.resolve("image/cni/lib"));
    Files.writeString(src.resolve("a.jar"), "jar");
    Files.writeString(tmp.resolve("image/cni/nodemesh-cni"), "#!/bin/sh\n");
    Path bin = Files.createDirectories(tmp.resolve("host/opt/cni/bin"));
    ObjectNode conf = (ObjectNode) TestJson.JSON.readTree("{\"type\": \"nodemesh\"}");
    List<String> log = new ArrayList<>();
    InstallCni install =
        new InstallCni(
                new InstallCni.Settings(
                    Files.createDirectories(tmp.resolve("host/etc/cni/net.d")),
                    bin,
                    tmp.resolve("image/cni/nodemesh-cni"),
                    src,
                    conf,
                    null),
                log::add)
            .bundleJava(tmp.resolve("image/java-home"));

    install.installBinaries();
    Path lib = bin.resolve("nodemesh-lib");
    assertEquals(Path.of("jre/bin/java"), Files.readSymbolicLink(lib.resolve("java")));
    assertTrue(Files.isExecutable(lib.resolve("jre/bin/java")));
    assertEquals(Path.of("modules"), Files.readSymbolicLink(lib.resolve("jre/lib/link")));
    assertEquals("modules", Files.readString(lib.resolve("jre/lib/modules")));
    Process p = new ProcessBuilder(lib.resolve("java").toString(), "-version").start();
    assertEquals(
        "bundled -version",
        new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip());
    assertEquals(0, p.waitFor());

    install.installBinaries(); // again (pod restart): replaced whole
    assertTrue(Files.isExecutable(lib.resolve("java")));

    install.uninstall();
    assertFalse(Files.exists(lib));
    assertFalse(Files.exists(bin.resolve("nodemesh")));
  }

  @Test
  void aDirectoryWithoutJavaIsRefused() {
    InstallCni install =
        new InstallCni(
            new InstallCni.Settings(
                tmp, tmp, tmp.resolve("w"), tmp, TestJson.JSON.createObjectNode(), null),
            s -> {});
    assertThrows(IllegalArgumentException.class, () -> install.bundleJava(tmp));
  }
}
