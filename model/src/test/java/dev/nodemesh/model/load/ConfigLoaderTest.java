package dev.nodemesh.model.load;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.ip;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static dev.nodemesh.model.testing.MeshYaml.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigException;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
  private static final String ECHO = "{app: echo}";
  private static final String WEB = "[{name: http, port: 80, targetPort: 8080}]";

  @TempDir Path dir;

  @Test
  void loadsTheBasicExample() throws Exception {
    // Surefire runs in the module directory; the example is shared with local mode.
    ConfigSnapshot snap = ConfigLoader.load(Path.of("../examples/basic"));
    assertEquals(1, snap.version());
    assertEquals(
        List.of("client", "echo-1", "echo-2", "echo-3"),
        snap.workloads().stream().map(Workload::name).toList());
    Workload echo1 = snap.workloadByIp(ip("10.213.0.11"));
    assertEquals("echo-1", echo1.name());
    assertEquals(Map.of("http", 8080, "tcp", 9000), echo1.namedPorts());
    assertEquals("node-1", echo1.nodeName());
    MeshService echo = snap.serviceByVip(ip("10.96.0.10"));
    assertEquals(
        List.of(
            new ServicePort("http", 80, 8080, null, "http"),
            new ServicePort("tcp", 9000, 0, "tcp", "tcp")),
        echo.ports());
    assertEquals(3, snap.endpoints(echo).size());
    assertEquals("config version 1: 4 workloads, 1 services, 3 service endpoints", snap.describe());
  }

  @Test
  void appliesKubernetesDefaults() throws Exception {
    write(
        dir,
        "a.yaml",
        """
        kind: Pod
        metadata: {name: bare}
        status: {podIP: 10.0.0.1}
        ---
        kind: Service
        metadata: {name: svc}
        spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
        """);
    ConfigSnapshot snap = ConfigLoader.load(dir);
    Workload w = snap.workloads().get(0);
    assertEquals(
        new Workload(
            "default/bare",
            "bare",
            "default",
            List.of(ip("10.0.0.1")),
            Map.of(),
            "default",
            "",
            Map.of()),
        w);
    MeshService s = snap.services().get(0);
    assertEquals(List.of(ServicePort.numeric("", 80, 80, "tcp")), s.ports());
    assertEquals(Map.of(), s.selector());
    assertEquals(List.of(), snap.endpoints(s)); // no selector: no endpoints, not an error
  }

  @Test
  void readsEveryYamlFileAndDocumentAndIgnoresOtherKinds() throws Exception {
    write(dir, "b.yml", docs(pod("default", "b", "10.0.0.2", ECHO, "[]"), ""));
    write(
        dir,
        "a.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: default}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: echo}
        spec: {replicas: 3}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: echo-abc}
        ---
        apiVersion: v1
        kind: List
        items:
        """
            + "- "
            + pod("default", "a", "10.0.0.1", ECHO, "[]").replace("\n", "\n  "));
    write(dir, "notes.txt", "kind: Pod\nthis is not read");
    write(dir, ".#a.yaml", "an editor lock file: {{{ not read");
    write(dir, "svc.yaml", service("default", "echo", "[10.96.0.1]", ECHO, WEB));
    ConfigSnapshot snap = ConfigLoader.load(dir, 7);
    assertEquals(7, snap.version());
    assertEquals(List.of("a", "b"), snap.workloads().stream().map(Workload::name).toList());
    assertEquals(2, snap.endpoints(snap.services().get(0)).size());
  }

  @Test
  void readsUidServiceAccountDualStackAndHeadless() throws Exception {
    write(
        dir,
        "a.yaml",
        """
        kind: Pod
        metadata: {name: p, namespace: prod, uid: 1234-abcd, labels: {app: p, tier: "1"}}
        spec:
          serviceAccountName: p-sa
          containers:
          - {name: a, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}
          - {name: b, ports: [{containerPort: 9000}, {name: admin, containerPort: 9901}]}
        status: {podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]}
        ---
        kind: Service
        metadata: {name: headless, namespace: prod}
        spec:
          clusterIP: None
          selector: {app: p}
          ports: [{name: http, port: 80, targetPort: web, appProtocol: http}]
        """);
    ConfigSnapshot snap = ConfigLoader.load(dir);
    Workload w = snap.workloads().get(0);
    assertEquals("1234-abcd", w.uid());
    assertEquals("p-sa", w.serviceAccount());
    assertEquals(Map.of("app", "p", "tier", "1"), w.labels());
    assertEquals(List.of(ip("10.0.0.1"), ip("fd00::1")), w.ips());
    assertEquals(Map.of("http", 8080, "admin", 9901), w.namedPorts()); // UDP "dns" left out
    assertEquals(w, snap.workloadByIp(ip("fd00::1")));
    MeshService headless = snap.services().get(0);
    assertEquals(List.of(), headless.vips());
    // A named targetPort no pod declares is not an error: routing skips such endpoints.
    assertEquals(0, headless.ports().get(0).targetPortOn(w));
    assertEquals(List.of(w), snap.endpoints(headless));
  }

  @Test
  void rejectsABadPodIp() {
    write(
        dir,
        "pods.yaml",
        docs(
            pod("default", "server", "10.0.0.1", ECHO, "[]"),
            pod("default", "client", "10.0.0.x", ECHO, "[]")));
    assertErrors(
        "pods.yaml: Pod default/client: status.podIPs[0].ip: \"10.0.0.x\" is not an IP address",
        "pods.yaml: Pod default/client: status.podIP: \"10.0.0.x\" is not an IP address");
  }

  @Test
  void rejectsABadSinglePodIp() {
    write(dir, "pods.yaml", "kind: Pod\nmetadata: {name: client}\nstatus: {podIP: 10.0.0.x}\n");
    assertErrors("pods.yaml: Pod default/client: status.podIP: \"10.0.0.x\" is not an IP address");
  }

  @Test
  void rejectsAPortOutOfRange() {
    write(
        dir,
        "svc.yaml",
        service("default", "echo", "[10.96.0.1]", ECHO, "[{port: 80}, {port: 70000}]"));
    assertErrors(
        "svc.yaml: Service default/echo: spec.ports[1].port: 70000 is out of range 1-65535");
  }

  @Test
  void keepsOnlyTheTcpPortsOfAServiceLikeKubeDns() throws Exception {
    write(
        dir,
        "svc.yaml",
        service(
            "kube-system",
            "dns",
            "[10.96.0.1]",
            "{k8s-app: dns}",
            "[{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]"));
    MeshService dns = ConfigLoader.load(dir).services().get(0);
    assertEquals(1, dns.ports().size());
    assertEquals("dns-tcp", dns.ports().get(0).name());
  }

  @Test
  void rejectsAnUnknownServicePortProtocol() {
    write(
        dir,
        "svc.yaml",
        service(
            "kube-system", "dns", "[10.96.0.1]", "{k8s-app: dns}", "[{port: 53, protocol: QUIC}]"));
    assertErrors(
        "svc.yaml: Service kube-system/dns: spec.ports[0].protocol: \"QUIC\" is not TCP, UDP or SCTP");
  }

  @Test
  void rejectsBadServicePortFields() {
    write(
        dir,
        "svc.yaml",
        service(
            "default",
            "echo",
            "[10.96.0.1]",
            ECHO,
            "[{name: a, port: http}, {name: b, port: 81, targetPort: 0}, {name: c, port: 82,"
                + " targetPort: Not_A_Name}, {name: a, port: 81}, {name: e}]"));
    assertErrors(
        "svc.yaml: Service default/echo: spec.ports[0].port: \"http\" is not an integer",
        "svc.yaml: Service default/echo: spec.ports[1].targetPort: 0 is out of range 1-65535",
        "svc.yaml: Service default/echo: spec.ports[2].targetPort: \"Not_A_Name\" is not a valid"
            + " port name (1-15 of a-z, 0-9, '-'; one letter)",
        "svc.yaml: Service default/echo: spec.ports[3].port: 81 is already used by spec.ports[1]",
        "svc.yaml: Service default/echo: spec.ports[3].name: \"a\" is already used by spec.ports[0]",
        "svc.yaml: Service default/echo: spec.ports[4].port: is required");
  }

  @Test
  void rejectsABadClusterIp() {
    write(dir, "svc.yaml", service("default", "echo", "[10.96.0.300]", ECHO, WEB));
    assertErrors(
        "svc.yaml: Service default/echo: spec.clusterIPs[0]: \"10.96.0.300\" is not an IP address");
  }

  @Test
  void rejectsUnparseableYamlNamingFileAndLine() {
    write(dir, "good.yaml", pod("default", "a", "10.0.0.1", ECHO, "[]"));
    write(dir, "bad.yaml", "kind: Pod\nmetadata:\n  name: [unclosed\nstatus: {}\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(1, e.errors().size(), e.getMessage());
    assertTrue(e.errors().get(0).startsWith("bad.yaml: line 4: not valid YAML: "), e.getMessage());
  }

  @Test
  void pointsAtTheLineOfATab() {
    write(dir, "tab.yaml", "kind: Pod\n\tmetadata: {}\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(e.getMessage().startsWith("tab.yaml: line 2: not valid YAML: "), e.getMessage());
  }

  @Test
  void rejectsDuplicateYamlKeys() {
    write(dir, "dup.yaml", "kind: Pod\nkind: Service\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(e.getMessage().startsWith("dup.yaml: line 2: not valid YAML"), e.getMessage());
  }

  @Test
  void rejectsMissingNameKindAndIp() {
    write(
        dir,
        "pods.yaml",
        """
        kind: Pod
        metadata: {name: ok}
        status: {podIP: 10.0.0.1}
        ---
        kind: Pod
        metadata: {namespace: default}
        status: {podIP: 10.0.0.2}
        ---
        metadata: {name: what}
        ---
        kind: Pod
        metadata: {name: no-ip}
        ---
        just a string
        """);
    assertErrors(
        "pods.yaml: Pod in document 2: metadata.name: is required",
        "pods.yaml: document 3: kind: is required",
        "pods.yaml: Pod default/no-ip: status.podIP: is required (or status.podIPs)",
        "pods.yaml: document 5: expected a Kubernetes object (a mapping with kind)");
  }

  @Test
  void rejectsWrongShapes() {
    write(
        dir,
        "pods.yaml",
        """
        kind: Pod
        metadata: {name: p, labels: [app, echo]}
        spec: {containers: {name: a}}
        status: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.2}]}
        """);
    assertErrors(
        "pods.yaml: Pod default/p: metadata.labels: expected a mapping of strings",
        "pods.yaml: Pod default/p: spec.containers: expected a list",
        "pods.yaml: Pod default/p: status.podIP: \"10.0.0.1\" differs from status.podIPs[0]");
  }

  @Test
  void rejectsDuplicateNamesInANamespaceAcrossFiles() {
    write(dir, "a.yaml", docs(pod("default", "web", "10.0.0.1", ECHO, "[]")));
    write(
        dir,
        "b.yaml",
        docs(
            pod("default", "web", "10.0.0.2", ECHO, "[]"),
            pod("other", "web", "10.0.0.3", ECHO, "[]"), // another namespace: fine
            service("default", "web", "[10.96.0.1]", ECHO, WEB),
            service("default", "web", "[10.96.0.2]", ECHO, WEB)));
    assertErrors(
        "b.yaml: Pod default/web: metadata.name: duplicate of the Pod in a.yaml",
        "b.yaml: Service default/web: metadata.name: duplicate of the Service in b.yaml");
  }

  @Test
  void rejectsSharedPodIpsAndVips() {
    write(dir, "a.yaml", pod("default", "a", "10.0.0.1", ECHO, "[]"));
    write(
        dir,
        "b.yaml",
        docs(
            pod("default", "b", "10.0.0.1", ECHO, "[]"),
            service("default", "s1", "[10.96.0.1]", ECHO, WEB),
            service("default", "s2", "[10.96.0.1]", ECHO, WEB),
            service("default", "s3", "[10.0.0.1]", ECHO, WEB)));
    assertErrors(
        "b.yaml: Pod default/b: status.podIPs: 10.0.0.1 is already the IP of Pod default/a in"
            + " a.yaml",
        "b.yaml: Service default/s2: spec.clusterIPs: 10.96.0.1 is already the cluster IP of"
            + " Service default/s1 in b.yaml",
        "b.yaml: Service default/s3: spec.clusterIPs: 10.0.0.1 is already the IP of Pod"
            + " default/a in a.yaml");
  }

  @Test
  void rejectsAnIpListedTwiceInOneObject() {
    write(
        dir,
        "a.yaml",
        docs(
            pod("default", "a", "10.0.0.1,10.0.0.1", ECHO, "[]"),
            service("default", "s", "[10.96.0.1, 10.96.0.1]", ECHO, WEB)));
    assertErrors(
        "a.yaml: Pod default/a: status.podIPs: 10.0.0.1 is listed twice",
        "a.yaml: Service default/s: spec.clusterIPs: 10.96.0.1 is listed twice");
  }

  @Test
  void rejectsTheWholeDirectoryForOneBadFileAndReportsEveryBadFile() {
    write(dir, "a-good.yaml", pod("default", "a", "10.0.0.1", ECHO, "[]"));
    write(dir, "b-bad.yaml", pod("default", "b", "nope", ECHO, "[]"));
    write(dir, "c-good.yaml", service("default", "echo", "[10.96.0.1]", ECHO, WEB));
    write(dir, "d-bad.yaml", service("default", "other", "[10.96.0.2]", ECHO, "[{port: 0}]"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(
        List.of(
            "b-bad.yaml: Pod default/b: status.podIPs[0].ip: \"nope\" is not an IP address",
            "b-bad.yaml: Pod default/b: status.podIP: \"nope\" is not an IP address",
            "d-bad.yaml: Service default/other: spec.ports[0].port: 0 is out of range 1-65535"),
        e.errors());
    assertEquals(String.join("\n", e.errors()), e.getMessage());
  }

  @Test
  void rejectsAMissingDirectory() {
    ConfigException e =
        assertThrows(ConfigException.class, () -> ConfigLoader.load(dir.resolve("nope")));
    assertTrue(e.getMessage().endsWith("nope: not a directory"), e.getMessage());
  }

  @Test
  void anEmptyDirectoryIsAnEmptyMesh() throws Exception {
    ConfigSnapshot snap = ConfigLoader.load(dir);
    assertEquals(List.of(), snap.workloads());
    assertNull(snap.serviceByVip(ip("10.96.0.1")));
  }

  private void assertErrors(String... expected) {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(List.of(expected), e.errors());
  }

  @Test
  void policiesAreReadAndIstiosKindsOfTheSameNameAreIgnored() throws Exception {
    write(
        dir,
        "policy.yaml",
        docs(
            MeshYaml.authorizationPolicy(
                "shop",
                "allow",
                "{rules: [{from: [{ipBlocks: [10.0.0.1]}], to: [{ports: [\"80\"]}]}]}"),
            MeshYaml.peerAuthentication("shop", "strict", "{mtls: {mode: STRICT}}"),
            MeshYaml.authorizationPolicy("shop", "istio", "{action: CUSTOM}")
                .replace("security.nodemesh.dev/v1alpha1", "security.istio.io/v1")));
    ConfigSnapshot snap = ConfigLoader.load(dir);
    assertEquals(1, snap.authorizationPolicies("shop").size());
    AuthorizationPolicy p = snap.authorizationPolicies("shop").get(0);
    assertEquals(AuthorizationPolicy.Action.ALLOW, p.action()); // the default, as in Istio
    assertEquals("10.0.0.1/32", p.rules().get(0).from().get(0).ipBlocks().get(0).toString());
    assertEquals(List.of(80), p.rules().get(0).to().get(0).ports());
    assertEquals(PeerAuthentication.Mode.STRICT, snap.peerAuthentications("shop").get(0).mode());
    assertEquals(List.of(), snap.authorizationPolicies("other"));
  }

  @Test
  void aBadPolicyRejectsTheDirectoryWithEveryReason() {
    write(dir, "pods.yaml", pod("shop", "web-1", "10.1.0.5", "{app: web}", "[]"));
    write(
        dir,
        "policy.yaml",
        docs(
            MeshYaml.authorizationPolicy(
                "shop",
                "p",
                "{action: deny, selector: [x], rules: [{from: [{}, {principals: [\"a*b\", bob]}],"
                    + " to: [{ports: [0]}], when: []}]}"),
            MeshYaml.peerAuthentication("shop", "pa", "{mtls: {mode: DISABLE}}"),
            MeshYaml.peerAuthentication("shop", "pa", "{mtls: {mode: STRICT}}")));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    String p = "policy.yaml: AuthorizationPolicy shop/p: ";
    assertEquals(
        List.of(
            p + "spec.selector: expected a mapping",
            p + "spec.action: \"deny\" is not ALLOW or DENY",
            p + "spec.rules[0].when: unknown field (expected one of from, to)",
            p
                + "spec.rules[0].from[0]: is empty; name at least one of ipBlocks, namespaces,"
                + " notIpBlocks, notNamespaces, notPrincipals, principals",
            p
                + "spec.rules[0].from[1].principals[0]: \"a*b\": '*' may only be the first or the"
                + " last character, once",
            p
                + "spec.rules[0].from[1].principals[1]: \"bob\" is not a spiffe:// URI (or a"
                + " pattern with '*')",
            p + "spec.rules[0].to[0].ports[0]: 0 is out of range 1-65535",
            "policy.yaml: PeerAuthentication shop/pa: spec.mtls.mode: \"DISABLE\" is not STRICT"
                + " or PERMISSIVE"),
        e.errors());
  }
}
