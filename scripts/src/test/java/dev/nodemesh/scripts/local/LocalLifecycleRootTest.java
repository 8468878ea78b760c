package dev.nodemesh.scripts.local;

import static dev.nodemesh.scripts.local.RootFixture.cgroupTree;
import static dev.nodemesh.scripts.local.RootFixture.pins;
import static dev.nodemesh.scripts.local.RootFixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.cni.agent.AgentClient;
import dev.nodemesh.scripts.local.StateFile.Kind;
import dev.nodemesh.scripts.local.StateFile.NodeRecord;
import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A local node's proxy across its life: restarted with the very command line local mode started it
 * with, it finds every enrolled pod again; and an eBPF-mode node taken down leaves no pin and no
 * cgroup attachment behind.
 */
@RootTest
class LocalLifecycleRootTest {
  private static final Path BASIC = Path.of("../examples/basic").toAbsolutePath().normalize();
  private static final Duration WAIT = Duration.ofSeconds(120);

  @TempDir Path runDir;
  private String prefix;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
  private final List<Long> pids = new ArrayList<>();

  @BeforeEach
  void prefix() {
    prefix = Names.randomPrefix();
  }

  @AfterEach
  void cleanUp() throws Exception {
    List<String> left = RootFixture.tearDown(runDir, prefix);
    for (long pid : pids) {
      ProcessHandle.of(pid).ifPresent(Daemons::stop);
    }
    assertEquals(List.of(), left, "left behind after down; output:\n" + log);
  }

  private StateFile.State up(List<String> proxyArgs) throws Exception {
    try {
      new LocalUp(RootFixture.upOptions(BASIC, runDir, prefix, WAIT, proxyArgs), out).run();
    } catch (Exception e) {
      throw new AssertionError("local up failed; output:\n" + log + "\n" + logs(), e);
    }
    StateFile.State state = StateFile.load(runDir).state();
    state.resources().stream()
        .filter(r -> r.kind() == Kind.process)
        .forEach(r -> pids.add(r.pid()));
    return state;
  }

  private String logs() throws IOException {
    return RootFixture.logs(runDir, 30);
  }

  private static Resource proxyOf(StateFile.State state, NodeRecord node) {
    return state.resources().stream()
        .filter(r -> r.kind() == Kind.process && r.name().equals("proxy:" + node.name()))
        .findFirst()
        .orElseThrow();
  }

  private static List<String> enrolled(NodeRecord node) {
    try (AgentClient agent = new AgentClient(Path.of(node.agentSocket()), Duration.ofSeconds(5))) {
      return agent.listPods().getPodsList().stream().map(Pod::getName).sorted().toList();
    } catch (RuntimeException e) {
      return List.of(); // not serving yet
    }
  }

  @Test
  void aProxyRestartedWithItsOwnCommandLineReenrolsEveryPod() throws Exception {
    StateFile.State state = up(List.of("--workers=1"));
    NodeRecord node = state.nodes().get(0);
    List<String> pods = node.pods().stream().sorted().toList();
    assertEquals(pods, enrolled(node));

    // The command line exactly as the kernel has it for the running proxy.
    Resource old = proxyOf(state, node);
    String raw = Files.readString(Path.of("/proc/" + old.pid() + "/cmdline"));
    List<String> argv = List.of(raw.substring(0, raw.length() - 1).split("\0", -1));
    assertTrue(argv.contains("--cni-run-dir"), "local mode names the records dir: " + argv);

    StateFile journal = StateFile.load(runDir);
    assertTrue(Daemons.stop(old), "old proxy stopped");
    journal.remove(old);
    Resource fresh =
        Daemons.start(journal, old.name(), null, argv, runDir.resolve("proxy-restarted.log"));
    pids.add(fresh.pid());

    long deadline = System.nanoTime() + WAIT.toNanos();
    List<String> got = List.of();
    while (System.nanoTime() < deadline && Daemons.alive(fresh)) {
      got = enrolled(node);
      if (got.equals(pods)) {
        break;
      }
      Thread.sleep(200);
    }
    assertEquals(pods, got, "pods re-enrolled after the restart; log:\n" + logs() + "\n" + log);
    String restartedLog = Files.readString(runDir.resolve("proxy-restarted.log"));
    assertTrue(
        restartedLog.contains(pods.size() + " pods enrolled"),
        "re-enrolled from the CNI records, not by new ADDs:\n" + restartedLog);
  }

  @Test
  void anEbpfNodeTakenDownLeavesNoPinAndNoCgroupAttachment() throws Exception {
    try (TestCgroup cgroup = TestCgroup.create("lifecycle");
        TestBpffs bpffs = TestBpffs.mount()) {
      Path pinDir = bpffs.path().resolve("nodemesh");
      // The kernel's own files of a fresh bpffs (maps.debug, progs.debug), not ours.
      List<String> kernels = pins(bpffs.path());
      try {
        up(
            List.of(
                "--workers=1",
                "--intercept=ebpf",
                "--bpf-cgroup=" + cgroup.path(),
                "--bpf-pin-dir=" + pinDir));
        // Up: pins (maps, the cgroup links, one inbound link per pod) and cgroup attachments.
        assertTrue(
            pins(bpffs.path()).size() >= kernels.size() + 13, "pinned: " + pins(bpffs.path()));
        assertTrue(
            pins(bpffs.path()).stream().anyMatch(p -> p.contains("link_inbound_")),
            "pods' inbound links pinned: " + pins(bpffs.path()));
        assertFalse(cgroupTree(cgroup.path()).isEmpty(), "programs attached to the cgroup");

        assertTrue(LocalDown.run(runDir, out), "down reports nothing left; output:\n" + log);
        assertEquals(kernels, pins(bpffs.path()), "bpffs after down; output:\n" + log);
        assertFalse(Files.exists(pinDir), "pin dir removed");
        assertEquals(List.of(), cgroupTree(cgroup.path()), "cgroup after down");
      } finally {
        // Whatever a failure left: unpinning detaches (links hold no other reference here).
        RootFixture.tearDown(runDir, prefix);
        sh("rm", "-rf", "--", pinDir.toString());
      }
    }
  }
}
