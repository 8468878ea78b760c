package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.intercept.InterceptionSelector;
import dev.nodemesh.proxy.intercept.IptablesInterception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Replies;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * {@code --intercept=auto} on a node where eBPF cannot be used, for real: the attach "cgroup" is a
 * plain directory, not on a cgroup2 mount, so the kernel probe fails. The proxy must start in
 * iptables mode with one warning, and pods' traffic must go through it; {@code --intercept=ebpf}
 * with the same paths must fail the start instead and leave nothing behind.
 */
@RootTest
class InterceptionFallbackRootTest {
  @TempDir Path tmp;
  private TestNode node;
  private TestBpffs bpffs;
  private Path notACgroup;
  private Path pins;
  private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
  private final Logger selectorLog = (Logger) LoggerFactory.getLogger(InterceptionSelector.class);

  @BeforeEach
  void setUp() throws Exception {
    // A real bpffs, so that the only thing wrong is the cgroup.
    bpffs = TestBpffs.mount();
    pins = bpffs.path().resolve("nodemesh");
    notACgroup = Files.createDirectories(tmp.resolve("not-a-cgroup"));
    node = TestNode.create(tmp.resolve("node"));
    node.addStandardMesh();
    logs.start();
    selectorLog.addAppender(logs);
  }

  @AfterEach
  void tearDown() throws Exception {
    selectorLog.detachAppender(logs);
    try {
      node.close();
    } finally {
      bpffs.close();
    }
  }

  @Test
  void autoFallsBackToIptablesWithOneWarningAndTrafficStillGoesThroughTheProxy() throws Exception {
    node.startProxy(TransportKind.EPOLL, InterceptionMode.auto(notACgroup, pins));
    assertTrue(
        node.proxy().dataPlane().interception() instanceof IptablesInterception,
        node.proxy().dataPlane().interception().toString());
    List<ILoggingEvent> warnings =
        logs.list.stream().filter(e -> e.getLevel() == Level.WARN).toList();
    assertEquals(1, warnings.size(), warnings.toString());
    String line = warnings.get(0).getFormattedMessage();
    assertTrue(line.startsWith("interception: iptables"), line);
    assertTrue(line.contains(notACgroup + " is not on a cgroup2 mount"), line);
    assertFalse(Files.exists(pins), "nothing may be pinned after a fallback");

    node.enrolStandardMesh();
    assertTrue(node.natTable("client").contains("NODEMESH_OUTPUT"));
    assertTrue(Replies.readLine(node.connect("client", Mesh.VIP, 80)).startsWith("echo-"));
    // It went through the proxy: only the proxy can turn the VIP into an echo pod.
    assertTrue(
        node.proxy()
            .dataPlane()
            .metrics()
            .scrape()
            .contains("destination_service=\"echo.default\""));
  }

  @Test
  void requiredEbpfFailsTheStartWithTheReasonAndLeavesNothing() {
    IOException e =
        assertThrows(
            IOException.class,
            () -> node.startProxy(TransportKind.EPOLL, InterceptionMode.ebpf(notACgroup, pins)));
    assertTrue(e.getMessage().contains(notACgroup + " is not on a cgroup2 mount"), e.getMessage());
    assertFalse(Files.exists(pins));
    assertFalse(Files.exists(tmp.resolve("node/agent.sock")), "the agent must not be serving");
  }
}
