package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.intercept.InterceptionMode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What local mode reads from the proxy flags it was given, to record an eBPF uninstall. */
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
}
