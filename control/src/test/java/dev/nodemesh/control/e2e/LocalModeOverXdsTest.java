package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.testing.Await;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole chain without root: a YAML directory, the control plane's local source, xDS on
 * loopback, and a real {@link NodeProxy} started with {@code --xds} instead of {@code
 * --config-dir}. Traffic through pods needs network namespaces and is the root tests' job.
 */
class LocalModeOverXdsTest {
  private static final Duration WAIT = Duration.ofSeconds(20);
  @TempDir Path dir;

  @Test
  void proxyGetsTheDirectoryOverXdsFollowsEditsAndIgnoresABrokenFile() throws Exception {
    Path config = Files.createDirectory(dir.resolve("config"));
    LoopbackMesh.write(
        dir, config, "pods.yaml", LoopbackMesh.ECHO_POD.formatted("echo-1", "10.1.0.1"));
    LoopbackMesh.write(dir, config, "services.yaml", LoopbackMesh.ECHO_SERVICE);
    LocalSource source = new LocalSource(config, 50);
    try (ControlPlane cp =
            ControlPlane.start(
                source,
                new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0),
                Duration.ofMillis(20));
        NodeProxy proxy = LoopbackMesh.startProxy(dir, cp, false)) {
      SnapshotHolder snapshots = proxy.dataPlane().snapshots();
      Await.until(
          WAIT,
          "initial config",
          () ->
              snapshots.current().workloads().size() == 1
                  && snapshots.current().services().size() == 1);
      assertEquals(200, LoopbackMesh.get(cp.healthAddress(), "/ready").statusCode());
      assertTrue(
          LoopbackMesh.get(cp.healthAddress(), "/metrics").body().contains("nodemesh_xds_pushes"));
      String dump = LoopbackMesh.get(proxy.adminAddress(), "/config_dump").body();
      assertTrue(
          dump.replace(" ", "").contains("\"version\":" + snapshots.current().version()), dump);

      LoopbackMesh.write(
          dir,
          config,
          "pods.yaml",
          LoopbackMesh.ECHO_POD.formatted("echo-1", "10.1.0.1")
              + "---\n"
              + LoopbackMesh.ECHO_POD.formatted("echo-2", "10.1.0.2"));
      Await.until(WAIT, "the new endpoint", () -> snapshots.current().workloads().size() == 2);
      long version = snapshots.current().version();

      LoopbackMesh.write(
          dir,
          config,
          "pods.yaml",
          LoopbackMesh.ECHO_POD.formatted("echo-1", "10.1.0.1") + "---\nkind: [oops\n");
      Await.until(WAIT, "the error report", () -> !source.errors().isEmpty());
      assertTrue(source.errors().get(0).startsWith("pods.yaml: line "), source.errors().get(0));
      Thread.sleep(200);
      assertEquals(version, snapshots.current().version(), "the broken file changed nothing");
      assertEquals(2, snapshots.current().workloads().size());
    }
  }
}
