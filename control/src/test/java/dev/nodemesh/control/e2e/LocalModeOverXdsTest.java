package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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

  private static final String POD =
      """
      apiVersion: v1
      kind: Pod
      metadata: {name: %s, namespace: default, labels: {app: echo}}
      spec: {nodeName: node-1, containers: [{name: app, image: app, ports: [{name: http, containerPort: 8080}]}]}
      status: {podIP: "%s"}
      """;
  private static final String SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata: {name: echo, namespace: default}
      spec: {clusterIP: 10.96.0.10, selector: {app: echo}, ports: [{port: 80, targetPort: http}]}
      """;

  private void write(Path config, String file, String text) throws Exception {
    Path tmp = dir.resolve(file + ".tmp");
    Files.writeString(tmp, text);
    Files.move(tmp, config.resolve(file), StandardCopyOption.ATOMIC_MOVE);
  }

  private static HttpResponse<String> get(InetSocketAddress a, String path) throws Exception {
    return HttpClient.newHttpClient()
        .send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + a.getPort() + path)).build(),
            HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void proxyGetsTheDirectoryOverXdsFollowsEditsAndIgnoresABrokenFile() throws Exception {
    Path config = Files.createDirectory(dir.resolve("config"));
    write(config, "pods.yaml", POD.formatted("echo-1", "10.1.0.1"));
    write(config, "services.yaml", SERVICE);
    LocalSource source = new LocalSource(config, 50);
    try (ControlPlane cp =
            ControlPlane.start(
                source,
                new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0),
                Duration.ofMillis(20));
        NodeProxy proxy =
            NodeProxy.start(
                new NodeProxyConfig(
                    TransportKind.NIO,
                    null,
                    dir.resolve("agent.sock"),
                    new InetSocketAddress("127.0.0.1", 0),
                    "node-1",
                    1,
                    InterceptionMode.iptables(),
                    "127.0.0.1:" + cp.address().getPort()))) {
      SnapshotHolder snapshots = proxy.dataPlane().snapshots();
      Await.until(
          WAIT,
          "initial config",
          () ->
              snapshots.current().workloads().size() == 1
                  && snapshots.current().services().size() == 1);
      assertEquals(200, get(cp.healthAddress(), "/ready").statusCode());
      assertTrue(get(cp.healthAddress(), "/metrics").body().contains("nodemesh_xds_pushes"));
      String dump = get(proxy.adminAddress(), "/config_dump").body();
      assertTrue(
          dump.replace(" ", "").contains("\"version\":" + snapshots.current().version()), dump);

      write(
          config,
          "pods.yaml",
          POD.formatted("echo-1", "10.1.0.1") + "---\n" + POD.formatted("echo-2", "10.1.0.2"));
      Await.until(WAIT, "the new endpoint", () -> snapshots.current().workloads().size() == 2);
      long version = snapshots.current().version();

      write(config, "pods.yaml", POD.formatted("echo-1", "10.1.0.1") + "---\nkind: [oops\n");
      Await.until(WAIT, "the error report", () -> !source.errors().isEmpty());
      assertTrue(source.errors().get(0).startsWith("pods.yaml: line "), source.errors().get(0));
      Thread.sleep(200);
      assertEquals(version, snapshots.current().version(), "the broken file changed nothing");
      assertEquals(2, snapshots.current().workloads().size());
    }
  }
}
