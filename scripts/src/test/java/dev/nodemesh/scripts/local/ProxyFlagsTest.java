package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.intercept.InterceptionMode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What local mode reads from the proxy flags it was given: to record an eBPF uninstall, to give
 * each node its own cgroup and pin dir, and to run pod processes in that cgroup.
 */
class ProxyFlagsTest {
  @Test
  void bpfIsUsedByEbpfAndAutoInEitherSpellingAndTheLastOneWins() {
    assertFalse(LocalUp.usesBpf(List.of("--workers=1")));
    assertFalse(LocalUp.usesBpf(List.of("--intercept=iptables")));
    assertTrue(LocalUp.usesBpf(List.of("--intercept=ebpf")));
    assertTrue(LocalUp.usesBpf(List.of("--intercept", "auto")));
    assertFalse(LocalUp.usesBpf(List.of("--intercept=ebpf", "--intercept", "iptables")));
  }

  @Test
  void pinDirIsTheFlagOrTheProxysDefault() {
    assertEquals(InterceptionMode.DEFAULT_PIN_DIR, LocalUp.bpfPinDir(List.of("--intercept=ebpf")));
    assertEquals(Path.of("/b/x"), LocalUp.bpfPinDir(List.of("--bpf-pin-dir=/b/x")));
    assertEquals(Path.of("/b/y"), LocalUp.bpfPinDir(List.of("--bpf-pin-dir", "/b/y")));
  }

  @Test
  void nodeInAFlagIsEachNodesName() {
    assertEquals(
        List.of("--workers=1", "--bpf-cgroup=/c/mesh-node-2", "--bpf-pin-dir", "/b/node-2/pins"),
        LocalUp.forNode(
            List.of(
                "--workers=1", "--bpf-cgroup=/c/mesh-{node}", "--bpf-pin-dir", "/b/{node}/pins"),
            "node-2"));
  }

  @Test
  void podProcessesJoinTheCgroupOfAnEbpfProxyNamedByTheFlag() {
    assertNull(PodProcess.cgroup(List.of("--bpf-cgroup=/c/x")), "iptables: none");
    assertNull(PodProcess.cgroup(List.of("--intercept=ebpf")), "the hierarchy's root: none");
    assertEquals(
        Path.of("/c/x"), PodProcess.cgroup(List.of("--intercept=ebpf", "--bpf-cgroup=/c/x")));
    assertEquals(
        Path.of("/c/y"), PodProcess.cgroup(List.of("--bpf-cgroup", "/c/y", "--intercept", "auto")));
    assertEquals(List.of("curl", "-s"), PodProcess.inCgroup(null, List.of("curl", "-s")));
    assertEquals(
        List.of("sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", "/c/x/cgroup.procs", "curl"),
        PodProcess.inCgroup(Path.of("/c/x"), List.of("curl")));
  }
}
