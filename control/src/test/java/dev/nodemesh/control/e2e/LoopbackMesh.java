package dev.nodemesh.control.e2e;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.Duration;
import java.util.List;

/**
 * The set-up the control plane's loopback (non-root) e2e tests share: a YAML directory served by a
 * {@link LocalSource}, a control plane on 127.0.0.1 (xDS, health, and optionally its CA with a
 * bootstrap token for node-1), and a real {@link NodeProxy} for node-1 taking its config over xDS
 * (NIO, no pod enrolled, so no root needed). Everything lives under the test's directory.
 */
final class LoopbackMesh {
  /** A pod of app "echo" on node-1 with an http port: format with its name and IP. */
  static final String ECHO_POD =
      """
      apiVersion: v1
      kind: Pod
      metadata: {name: %s, namespace: default, labels: {app: echo}}
      spec: {nodeName: node-1, containers: [{name: app, image: app, ports: [{name: http, containerPort: 8080}]}]}
      status: {podIP: "%s"}
      """;

  /** Service "echo" on 10.96.0.10:80 to the pods' http port. */
  static final String ECHO_SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata: {name: echo, namespace: default}
      spec: {clusterIP: 10.96.0.10, selector: {app: echo}, ports: [{port: 80, targetPort: http}]}
      """;

  private LoopbackMesh() {}

  /** Replaces {@code config/file} atomically (the source never sees half a file). */
  static void write(Path dir, Path config, String file, String text) throws Exception {
    Path tmp = dir.resolve(file + ".tmp");
    Files.writeString(tmp, text);
    Files.move(tmp, config.resolve(file), StandardCopyOption.ATOMIC_MOVE);
  }

  /** A CA under {@code dir/ca} issuing for {@code lifetime}, and a bootstrap token for node-1. */
  static CertificateAuthority ca(Path dir, Duration lifetime) throws Exception {
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")),
            CaSettings.of("cluster.local", lifetime),
            Clock.systemUTC());
    BootstrapTokens.generate(dir.resolve("tokens"), List.of("node-1"));
    return ca;
  }

  /** The control plane serving {@code config} over xDS, with {@code ca} (see {@link #ca}). */
  static ControlPlane startWithCa(Path dir, Path config, CertificateAuthority ca) throws Exception {
    return ControlPlane.start(
        new LocalSource(config, 50),
        new InetSocketAddress("127.0.0.1", 0),
        new InetSocketAddress("127.0.0.1", 0),
        Duration.ofMillis(20),
        new CaOptions(ca, BootstrapTokens.load(dir.resolve("tokens")), List.of("127.0.0.1")));
  }

  /** node-1's proxy over xDS from {@code cp}; with {@code identity}, holding certificates too. */
  static NodeProxy startProxy(Path dir, ControlPlane cp, boolean identity) throws Exception {
    NodeProxyConfig config =
        NodeProxyConfig.builder()
            .transport(TransportKind.NIO)
            .agentSocket(dir.resolve("agent.sock"))
            .adminAddress(new InetSocketAddress("127.0.0.1", 0))
            .nodeName("node-1")
            .workerThreads(1)
            .interception(InterceptionMode.iptables())
            .xdsTarget("127.0.0.1:" + cp.address().getPort())
            .build();
    if (identity) {
      config =
          config.toBuilder()
              .identity(
                  dir.resolve("ca/ca.crt"),
                  new IdentityConfig(
                      null, dir.resolve("node-1.token"), "cluster.local", Duration.ZERO))
              .build();
    }
    return NodeProxy.start(config);
  }

  /** GET http://127.0.0.1:port/path of a health or admin address. */
  static HttpResponse<String> get(InetSocketAddress a, String path) throws Exception {
    return HttpClient.newHttpClient()
        .send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + a.getPort() + path)).build(),
            HttpResponse.BodyHandlers.ofString());
  }
}
