package dev.nodemesh.control.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.AuthorizationPolicy;
import dev.nodemesh.api.config.v1.PeerAuthentication;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.capture.CaptureScope;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The directory source: parsing through the proxy's loader, per-file acceptance, cross-file rules.
 */
class LocalSourceTest {
  @TempDir Path dir;
  private final ResourceStore store = new ResourceStore(System::nanoTime, () -> {});
  private LocalSource source;

  @AfterEach
  void close() {
    if (source != null) {
      source.close();
    }
  }

  private void start() throws Exception {
    // The poller runs once at start; the test then drives scan() itself, on its own thread.
    source = new LocalSource(dir, TimeUnit.HOURS.toMillis(1));
    source.start(store, Runnable::run);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!source.ready()) {
      assertTrue(System.nanoTime() < deadline, "first scan");
      Thread.sleep(10);
    }
  }

  private void write(String file, String... docs) throws Exception {
    Path tmp = dir.resolve("." + file + ".tmp");
    Files.writeString(tmp, String.join("---\n", docs));
    Files.move(tmp, dir.resolve(file), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  private static String echo(String name, String ip) {
    return KubeYaml.pod("default", name, ip, "{app: echo}", "[{name: http, containerPort: 8080}]");
  }

  private Workload workload(String name) {
    var r = store.get(ResourceType.WORKLOAD, "default/" + name);
    assertNotNull(r, name);
    return (Workload) r.message();
  }

  @Test
  void filesBecomeResourcesAndAnEditIsPickedUp() throws Exception {
    write("pods.yaml", echo("echo-1", "10.1.0.1"));
    write(
        "services.yaml",
        KubeYaml.service(
            "default", "echo", "[10.96.0.10]", "{app: echo}", "[{port: 80, targetPort: http}]"));
    start();
    assertEquals(List.of("10.1.0.1"), workload("echo-1").getIpsList());
    assertTrue(workload("echo-1").getReady());
    Service echo = (Service) store.get(ResourceType.SERVICE, "default/echo").message();
    assertEquals("http", echo.getPorts(0).getTargetPortName());
    assertEquals("echo", echo.getSelector().getMatchLabelsOrThrow("app"));

    write("pods.yaml", echo("echo-1", "10.1.0.1"), echo("echo-2", "10.1.0.2"));
    source.scan();
    assertEquals(List.of("10.1.0.2"), workload("echo-2").getIpsList());
    assertTrue(source.errors().isEmpty(), source.errors().toString());
  }

  @Test
  void podsOutsideTheCaptureScopeGoOutWithoutTheTunnel() throws Exception {
    write(
        "pods.yaml",
        echo("echo-1", "10.1.0.1"),
        KubeYaml.pod("kube-system", "coredns-1", "10.1.0.53", "{app: dns}", "[]"),
        echo("legacy", "10.1.0.2"));
    source =
        new LocalSource(
            dir, TimeUnit.HOURS.toMillis(1), CaptureScope.of(List.of(), List.of("default/legacy")));
    source.start(store, Runnable::run);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!source.ready()) {
      assertTrue(System.nanoTime() < deadline, "first scan");
      Thread.sleep(10);
    }
    assertEquals(TunnelProtocol.HBONE, workload("echo-1").getTunnel());
    assertEquals(TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED, workload("legacy").getTunnel());
    var dns = store.get(ResourceType.WORKLOAD, "kube-system/coredns-1");
    assertNotNull(dns);
    assertEquals(
        TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED, ((Workload) dns.message()).getTunnel());
  }

  @Test
  void dualStackPodsAndServicesKeepBothFamilies() throws Exception {
    // podIPs / clusterIPs with an IPv6 entry reach the xDS resources whole, in order: the proxy
    // routes [fd00:96::a]:80 to the IPv6 address of an endpoint from these.
    write(
        "pods.yaml",
        echo("echo-1", "10.1.0.1")
            .replace(
                "status: {podIP: \"10.1.0.1\"}",
                "status: {podIP: \"10.1.0.1\", podIPs: [{ip: 10.1.0.1}, {ip: \"fd00:1::1\"}]}"));
    write(
        "services.yaml",
        KubeYaml.service(
            "default",
            "echo",
            "[10.96.0.10, \"fd00:96::a\"]",
            "{app: echo}",
            "[{port: 80, targetPort: http}]"));
    start();
    assertTrue(source.errors().isEmpty(), source.errors().toString());
    assertEquals(List.of("10.1.0.1", "fd00:1:0:0:0:0:0:1"), workload("echo-1").getIpsList());
    Service echo = (Service) store.get(ResourceType.SERVICE, "default/echo").message();
    assertEquals(List.of("10.96.0.10", "fd00:96:0:0:0:0:0:a"), echo.getVipsList());
  }

  @Test
  void aBrokenFileIsReportedByFileAndFieldAndItsLastGoodVersionStays() throws Exception {
    write("pods.yaml", echo("echo-1", "10.1.0.1"));
    write("more.yaml", echo("extra", "10.1.0.9"));
    start();
    long revision = store.revision();

    write("pods.yaml", echo("echo-1", "10.1.0.1"), echo("echo-2", "10.1.0.300"));
    write("more.yaml", echo("extra", "10.1.0.8"));
    source.scan();
    String errors = String.join("\n", source.errors());
    assertTrue(errors.contains("pods.yaml: Pod default/echo-2: status.podIP"), errors);
    assertEquals(null, store.get(ResourceType.WORKLOAD, "default/echo-2"));
    assertEquals(List.of("10.1.0.1"), workload("echo-1").getIpsList());
    // The other file's change is not held back by the broken one.
    assertEquals(List.of("10.1.0.8"), workload("extra").getIpsList());
    assertEquals(revision + 1, store.revision());

    write("pods.yaml", echo("echo-1", "10.1.0.1"), echo("echo-2", "10.1.0.2"));
    source.scan();
    assertEquals(List.of("10.1.0.2"), workload("echo-2").getIpsList());
  }

  @Test
  void aChangeThatClashesWithAnotherFileIsRefused() throws Exception {
    write("a.yaml", echo("echo-1", "10.1.0.1"));
    write("b.yaml", echo("echo-2", "10.1.0.2"));
    start();
    write("b.yaml", echo("echo-2", "10.1.0.1"));
    source.scan();
    String errors = String.join("\n", source.errors());
    assertTrue(errors.contains("10.1.0.1"), errors);
    assertTrue(errors.contains("b.yaml"), errors);
    assertEquals(List.of("10.1.0.2"), workload("echo-2").getIpsList());
  }

  @Test
  void aDeletedFileTakesItsObjectsAlong() throws Exception {
    write("a.yaml", echo("echo-1", "10.1.0.1"));
    write("b.yaml", echo("echo-2", "10.1.0.2"));
    start();
    Files.delete(dir.resolve("b.yaml"));
    source.scan();
    assertEquals(null, store.get(ResourceType.WORKLOAD, "default/echo-2"));
    assertNotNull(store.get(ResourceType.WORKLOAD, "default/echo-1"));
  }

  private static final String POLICY =
      "apiVersion: security.nodemesh.dev/v1alpha1\nkind: AuthorizationPolicy\n"
          + "metadata: {name: allow-frontend, namespace: default}\n"
          + "spec: {selector: {matchLabels: {app: echo}}, action: ALLOW, rules: [{from: "
          + "[{principals: [\"spiffe://cluster.local/ns/default/sa/frontend\"], "
          + "ipBlocks: [10.0.0.0/8]}], to: [{ports: [8080]}]}]}\n";

  private static final String STRICT =
      "apiVersion: security.nodemesh.dev/v1alpha1\nkind: PeerAuthentication\n"
          + "metadata: {name: mesh, namespace: nodemesh-system}\n"
          + "spec: {mtls: {mode: STRICT}}\n";

  @Test
  void policiesBecomeResourcesAndABrokenPolicyFileIsRefusedWhole() throws Exception {
    write("policy.yaml", POLICY, STRICT);
    start();

    var p = store.get(ResourceType.AUTHORIZATION_POLICY, "default/allow-frontend");
    assertNotNull(p);
    AuthorizationPolicy policy = (AuthorizationPolicy) p.message();
    assertEquals(AuthorizationPolicy.Action.ALLOW, policy.getAction());
    assertEquals(Map.of("app", "echo"), policy.getSelector().getMatchLabelsMap());
    assertEquals(
        List.of("spiffe://cluster.local/ns/default/sa/frontend"),
        policy.getRules(0).getFrom(0).getPrincipalsList());
    assertEquals(List.of("10.0.0.0/8"), policy.getRules(0).getFrom(0).getIpBlocksList());
    assertEquals(List.of(8080), policy.getRules(0).getTo(0).getPortsList());
    var pa = store.get(ResourceType.PEER_AUTHENTICATION, "nodemesh-system/mesh");
    assertNotNull(pa);
    assertEquals(PeerAuthentication.Mode.STRICT, ((PeerAuthentication) pa.message()).getMode());

    // A typo in one rule (and a bad CIDR) refuses the whole file: the STRICT mode beside it stays
    // as it was, not half-applied.
    write(
        "policy.yaml",
        POLICY.replace("ipBlocks: [10.0.0.0/8]", "ipBlocks: [10.0.0.0/33], principal: [x]"),
        STRICT.replace("STRICT", "PERMISSIVE"));
    source.scan();

    assertEquals(
        List.of(
            "policy.yaml: AuthorizationPolicy default/allow-frontend: "
                + "spec.rules[0].from[0].principal: unknown field (expected one of ipBlocks, "
                + "namespaces, notIpBlocks, notNamespaces, notPrincipals, principals)",
            "policy.yaml: AuthorizationPolicy default/allow-frontend: "
                + "spec.rules[0].from[0].ipBlocks[0]: \"10.0.0.0/33\" is not an IP address or "
                + "CIDR block"),
        source.errors());
    assertEquals(p, store.get(ResourceType.AUTHORIZATION_POLICY, "default/allow-frontend"));
    assertEquals(pa, store.get(ResourceType.PEER_AUTHENTICATION, "nodemesh-system/mesh"));
  }
}
