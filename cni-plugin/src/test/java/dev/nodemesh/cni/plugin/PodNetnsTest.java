package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.cni.spec.CniError;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code CNI_NETNS} must be a network namespace and not the plugin's own. */
class PodNetnsTest {
  @TempDir Path tmp;

  private static CniError refused(String path) {
    CniError e = assertThrows(CniError.class, () -> PodNetns.standard().require(path));
    assertEquals(CniError.INVALID_ENVIRONMENT, e.code());
    return e;
  }

  @Test
  void theHostsNamespaceIsRefusedUnderAnyName() throws Exception {
    assertTrue(refused("/proc/self/ns/net").details().contains("host's"));
    assertTrue(refused("/proc/thread-self/ns/net").details().contains("host's"));
    // The case the issue names. pid 1 shares the host's namespace on a node; in a sandbox it may
    // not be readable at all. Refused either way.
    CniError pid1 = refused("/proc/1/ns/net");
    if (HostileInputTest.sameAsOwnNetns("/proc/1/ns/net")) {
      assertTrue(pid1.details().contains("host's"), pid1.details());
    }
  }

  @Test
  void anotherKindOfNamespaceIsRefused() {
    assertTrue(refused("/proc/self/ns/uts").details().contains("not a network namespace"));
    assertTrue(refused("/proc/self/ns/mnt").details().contains("not a network namespace"));
  }

  @Test
  void filesThatAreNoNamespaceAreRefused() throws Exception {
    Path plain = Files.writeString(tmp.resolve("netns"), "x");
    assertTrue(refused(plain.toString()).details().contains("not a namespace file"));
    assertTrue(refused(tmp.toString()).details().contains("not a namespace file"));
    assertTrue(refused("/dev/null").details().contains("not a namespace file"));
    assertTrue(refused(tmp.resolve("gone").toString()).details().contains("does not exist"));
    assertTrue(refused("var/run/netns/p1").details().contains("absolute"));
    Path link = Files.createSymbolicLink(tmp.resolve("link"), Path.of("/proc/self/ns/net"));
    assertTrue(refused(link.toString()).details().contains("host's"));
  }

  @Test
  void anotherNetworkNamespaceIsAccepted() throws Exception {
    try (ScratchNetns n = ScratchNetns.start()) {
      PodNetns.standard().require(n.path());
    }
  }

  @Test
  void aLongPathIsShortenedInTheMessage() {
    String path = "/" + "a".repeat(3000);
    assertTrue(refused(path).details().length() < 400);
  }

  @Test
  void mountinfoEscapesAreDecoded() {
    assertEquals("/run/netns/a b\\c", PodNetns.unescape("/run/netns/a\\040b\\134c"));
    assertEquals("/run/x\\9", PodNetns.unescape("/run/x\\9"));
    assertEquals("/plain", PodNetns.unescape("/plain"));
  }
}
