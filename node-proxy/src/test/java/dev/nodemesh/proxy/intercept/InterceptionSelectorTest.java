package dev.nodemesh.proxy.intercept;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.KernelProbe;
import dev.nodemesh.proxy.agent.EnrolledPod;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The start-time choice between eBPF and iptables, with a fake probe and fake interceptions. */
class InterceptionSelectorTest {
  @TempDir Path tmp;

  private final List<String> warnings = new ArrayList<>();
  private final List<String> started = new ArrayList<>();
  private final Fake ebpf = new Fake("ebpf");
  private final Fake iptables = new Fake("iptables");
  private KernelProbe probe = KernelProbe.ok();
  private int probes;
  private IOException attachFailure;

  private InterceptionSelector selector() {
    return new InterceptionSelector(
        mode -> {
          probes++;
          return probe;
        },
        mode -> {
          if (attachFailure != null) {
            throw attachFailure;
          }
          started.add("ebpf");
          return ebpf;
        },
        mode -> {
          started.add("iptables");
          return iptables;
        },
        warnings::add);
  }

  private InterceptionMode mode(InterceptionMode.Kind kind) {
    return new InterceptionMode(kind, tmp.resolve("cgroup"), tmp.resolve("pins"));
  }

  @Test
  void iptablesNeverProbes() throws IOException {
    probe = KernelProbe.unavailable("no BTF");
    assertSame(iptables, selector().select(mode(InterceptionMode.Kind.IPTABLES)));
    assertEquals(0, probes);
    assertEquals(List.of(), warnings);
  }

  @Test
  void autoUsesEbpfWhenTheProbeAndAttachSucceed() throws IOException {
    assertSame(ebpf, selector().select(mode(InterceptionMode.Kind.AUTO)));
    assertEquals(List.of("ebpf"), started);
    assertEquals(List.of(), warnings);
  }

  @Test
  void autoFallsBackToIptablesWithOneLineNamingEveryReason() throws IOException {
    probe = KernelProbe.unavailable("no kernel BTF", "attach cgroup /x is not a directory");
    assertSame(iptables, selector().select(mode(InterceptionMode.Kind.AUTO)));
    assertEquals(List.of("iptables"), started, "eBPF must not even be tried after a failed probe");
    assertEquals(1, warnings.size(), warnings.toString());
    String line = warnings.get(0);
    assertTrue(line.startsWith("interception: iptables"), line);
    assertTrue(line.contains("no kernel BTF; attach cgroup /x is not a directory"), line);
    assertTrue(line.contains("--intercept=ebpf"), line);
    assertTrue(!line.contains("\n"), "one line");
  }

  @Test
  void autoFallsBackWhenTheAttachFailsAfterACleanProbe() throws IOException {
    attachFailure = new IOException("bpf_link_create nm_connect4: Operation not permitted");
    assertSame(iptables, selector().select(mode(InterceptionMode.Kind.AUTO)));
    assertEquals(1, warnings.size());
    assertTrue(
        warnings.get(0).contains("eBPF attach failed: bpf_link_create nm_connect4"),
        warnings.get(0));
  }

  @Test
  void autoSaysWhenAnEarlierEbpfRunLeftProgramsAttached() throws IOException {
    Files.createDirectories(tmp.resolve("pins"));
    Files.createFile(tmp.resolve("pins/link_connect4"));
    probe = KernelProbe.unavailable("libbpf.so.1 not loadable");
    selector().select(mode(InterceptionMode.Kind.AUTO));
    assertTrue(warnings.get(0).contains("still attached"), warnings.get(0));
  }

  @Test
  void requiredEbpfFailsTheStartWithTheReasonsAndInstallsNothing() {
    probe = KernelProbe.unavailable("no cgroup2 mounted");
    IOException e =
        assertThrows(IOException.class, () -> selector().select(mode(InterceptionMode.Kind.EBPF)));
    assertTrue(e.getMessage().contains("no cgroup2 mounted"), e.getMessage());
    assertTrue(e.getMessage().contains("--intercept=auto"), e.getMessage());
    assertEquals(List.of(), started, "neither interception was started");
    assertEquals(List.of(), warnings);
  }

  @Test
  void requiredEbpfPropagatesAnAttachFailure() {
    attachFailure = new IOException("bpf_object__load: verifier says no");
    IOException e =
        assertThrows(IOException.class, () -> selector().select(mode(InterceptionMode.Kind.EBPF)));
    assertSame(attachFailure, e);
    assertEquals(List.of(), started);
  }

  @Test
  void requiredEbpfWithAGoodProbeAttaches() throws IOException {
    assertSame(ebpf, selector().select(mode(InterceptionMode.Kind.EBPF)));
    assertEquals(1, probes);
  }

  private static final class Fake implements Interception {
    private final String name;

    Fake(String name) {
      this.name = name;
    }

    @Override
    public void install(EnrolledPod pod) {}

    @Override
    public void remove(Path netns) {}

    @Override
    public InetSocketAddress originalDestination(Channel accepted, EnrolledPod source) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void close() {}

    @Override
    public String toString() {
      return name;
    }
  }
}
