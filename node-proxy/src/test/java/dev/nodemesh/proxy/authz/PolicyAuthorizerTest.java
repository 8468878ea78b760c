package dev.nodemesh.proxy.authz;

import static dev.nodemesh.model.testing.MeshYaml.authorizationPolicy;
import static dev.nodemesh.model.testing.MeshYaml.peerAuthentication;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The authorizer as a table: each case is a set of policies (YAML, through the real loader), a
 * caller and a destination port, and the decision expected. No sockets.
 */
class PolicyAuthorizerTest {
  private static final String TD = "cluster.local";
  private static final String WORKLOADS =
      MeshYaml.docs(
          pod("shop", "web-1", "10.1.0.5", "{app: web}", "[]"),
          pod("shop", "db-1", "10.1.0.6", "{app: db}", "[]"),
          pod("nodemesh-system", "sys-1", "10.1.0.9", "{app: sys}", "[]"));

  @TempDir Path dir;

  private static ConnectionSource mtls(String ns, String sa, String ip) {
    return new ConnectionSource(new SpiffeId(TD, ns, sa), addr(ip), true);
  }

  private static ConnectionSource plaintext(String ip) {
    return new ConnectionSource(null, addr(ip), false);
  }

  private static InetAddress addr(String ip) {
    return Objects.requireNonNull(NetUtil.createInetAddressFromIpAddressString(ip));
  }

  /** One row: policies, destination pod, port, caller, expected allowed / policy / reason. */
  private record Case(
      String name,
      List<String> policies,
      String destination,
      int port,
      ConnectionSource source,
      boolean allowed,
      String policy,
      String reason) {
    @Override
    public String toString() {
      return name;
    }
  }

  private static Case allow(
      String name, List<String> policies, int port, ConnectionSource src, String policy) {
    return new Case(name, policies, "web-1", port, src, true, policy, "allowed");
  }

  private static Case deny(
      String name,
      List<String> policies,
      int port,
      ConnectionSource src,
      String policy,
      String reason) {
    return new Case(name, policies, "web-1", port, src, false, policy, reason);
  }

  private static final ConnectionSource FRONTEND = mtls("shop", "frontend", "10.1.0.7");
  private static final ConnectionSource OTHER_NS = mtls("other", "frontend", "10.2.0.7");
  private static final ConnectionSource OUTSIDE = plaintext("192.168.1.20");

  private static String allowFrom(String name, String from) {
    return authorizationPolicy(
        "shop",
        name,
        "{selector: {matchLabels: {app: web}}, action: ALLOW, rules: [{from: [" + from + "]}]}");
  }

  private static String denyFrom(String ns, String name, String from) {
    return authorizationPolicy(ns, name, "{action: DENY, rules: [{from: [" + from + "]}]}");
  }

  static Stream<Case> cases() {
    String frontendExact = "spiffe://cluster.local/ns/shop/sa/frontend";
    return Stream.of(
        allow("no policies: default allow", List.of(), 80, OUTSIDE, "default-allow"),
        allow(
            "exact principal",
            List.of(allowFrom("p", "{principals: [" + frontendExact + "]}")),
            80,
            FRONTEND,
            "shop/p"),
        deny(
            "exact principal, another caller",
            List.of(allowFrom("p", "{principals: [" + frontendExact + "]}")),
            80,
            OTHER_NS,
            "default-deny",
            "no_allow_match"),
        allow(
            "prefix principal",
            List.of(allowFrom("p", "{principals: [\"spiffe://cluster.local/ns/shop/*\"]}")),
            80,
            FRONTEND,
            "shop/p"),
        deny(
            "prefix principal, other namespace",
            List.of(allowFrom("p", "{principals: [\"spiffe://cluster.local/ns/shop/*\"]}")),
            80,
            OTHER_NS,
            "default-deny",
            "no_allow_match"),
        allow(
            "suffix principal matches any namespace",
            List.of(allowFrom("p", "{principals: [\"*/sa/frontend\"]}")),
            80,
            OTHER_NS,
            "shop/p"),
        allow(
            "star principal: any authenticated caller",
            List.of(allowFrom("p", "{principals: [\"*\"]}")),
            80,
            OTHER_NS,
            "shop/p"),
        deny(
            "star principal does not match plaintext",
            List.of(allowFrom("p", "{principals: [\"*\"]}")),
            80,
            OUTSIDE,
            "default-deny",
            "no_allow_match"),
        allow(
            "namespaces", List.of(allowFrom("p", "{namespaces: [other]}")), 80, OTHER_NS, "shop/p"),
        deny(
            "namespaces: plaintext has none",
            List.of(allowFrom("p", "{namespaces: [\"*\"]}")),
            80,
            OUTSIDE,
            "default-deny",
            "no_allow_match"),
        allow(
            "ipBlocks CIDR",
            List.of(allowFrom("p", "{ipBlocks: [192.168.1.0/24]}")),
            80,
            OUTSIDE,
            "shop/p"),
        deny(
            "ipBlocks, outside the block",
            List.of(allowFrom("p", "{ipBlocks: [192.168.2.0/24, 10.9.9.9]}")),
            80,
            OUTSIDE,
            "default-deny",
            "no_allow_match"),
        deny(
            "notPrincipals excludes",
            List.of(allowFrom("p", "{namespaces: [shop], notPrincipals: [\"*/sa/frontend\"]}")),
            80,
            FRONTEND,
            "default-deny",
            "no_allow_match"),
        allow(
            "notPrincipals is met by plaintext",
            List.of(allowFrom("p", "{notPrincipals: [\"*\"], ipBlocks: [0.0.0.0/0]}")),
            80,
            OUTSIDE,
            "shop/p"),
        deny(
            "notNamespaces excludes",
            List.of(allowFrom("p", "{notNamespaces: [other]}")),
            80,
            OTHER_NS,
            "default-deny",
            "no_allow_match"),
        deny(
            "notIpBlocks excludes",
            List.of(allowFrom("p", "{notIpBlocks: [192.168.0.0/16]}")),
            80,
            OUTSIDE,
            "default-deny",
            "no_allow_match"),
        allow(
            "ports: the listed port",
            List.of(
                authorizationPolicy(
                    "shop", "p", "{rules: [{from: [{namespaces: [shop]}], to: [{ports: [80]}]}]}")),
            80,
            FRONTEND,
            "shop/p"),
        deny(
            "ports: another port",
            List.of(
                authorizationPolicy(
                    "shop", "p", "{rules: [{from: [{namespaces: [shop]}], to: [{ports: [80]}]}]}")),
            81,
            FRONTEND,
            "default-deny",
            "no_allow_match"),
        deny(
            "notPorts",
            List.of(authorizationPolicy("shop", "p", "{rules: [{to: [{notPorts: [\"22\"]}]}]}")),
            22,
            FRONTEND,
            "default-deny",
            "no_allow_match"),
        allow(
            "empty rule allows everything",
            List.of(authorizationPolicy("shop", "p", "{rules: [{}]}")),
            22,
            OUTSIDE,
            "shop/p"),
        deny(
            "DENY before ALLOW",
            List.of(
                allowFrom("a", "{principals: [\"*\"]}"),
                denyFrom("shop", "d", "{principals: [" + frontendExact + "]}")),
            80,
            FRONTEND,
            "shop/d",
            "denied_by_policy"),
        allow(
            "DENY that does not match leaves ALLOW",
            List.of(
                allowFrom("a", "{principals: [\"*\"]}"),
                denyFrom("shop", "d", "{namespaces: [other]}")),
            80,
            FRONTEND,
            "shop/a"),
        allow(
            "DENY alone: others default allow",
            List.of(denyFrom("shop", "d", "{namespaces: [other]}")),
            80,
            FRONTEND,
            "default-allow"),
        deny(
            "mesh-wide DENY in the root namespace",
            List.of(denyFrom("nodemesh-system", "d", "{namespaces: [other]}")),
            80,
            OTHER_NS,
            "nodemesh-system/d",
            "denied_by_policy"),
        deny(
            "namespace default-deny (ALLOW with no rules)",
            List.of(authorizationPolicy("shop", "deny-all", "{}")),
            80,
            FRONTEND,
            "shop/deny-all",
            "default_deny"),
        deny(
            "mesh-wide default-deny",
            List.of(authorizationPolicy("nodemesh-system", "deny-all", "{}")),
            80,
            FRONTEND,
            "nodemesh-system/deny-all",
            "default_deny"),
        allow(
            "mesh default-deny, namespace allows",
            List.of(
                authorizationPolicy("nodemesh-system", "deny-all", "{}"),
                allowFrom("p", "{namespaces: [shop]}")),
            80,
            FRONTEND,
            "shop/p"),
        allow(
            "a selector that picks another workload does not apply",
            List.of(authorizationPolicy("shop", "db-only", "{selector: {matchLabels: {app: db}}}")),
            80,
            FRONTEND,
            "default-allow"),
        allow(
            "another namespace's policy does not apply",
            List.of(authorizationPolicy("other", "deny-all", "{}")),
            80,
            FRONTEND,
            "default-allow"),
        deny(
            "STRICT refuses plaintext",
            List.of(peerAuthentication("shop", "strict", "{mtls: {mode: STRICT}}")),
            80,
            OUTSIDE,
            "shop/strict",
            "plaintext_strict"),
        allow(
            "STRICT accepts mTLS",
            List.of(peerAuthentication("shop", "strict", "{mtls: {mode: STRICT}}")),
            80,
            FRONTEND,
            "default-allow"),
        allow(
            "PERMISSIVE accepts plaintext",
            List.of(peerAuthentication("shop", "p", "{mtls: {mode: PERMISSIVE}}")),
            80,
            OUTSIDE,
            "default-allow"),
        deny(
            "mesh-wide STRICT",
            List.of(peerAuthentication("nodemesh-system", "mesh", "{mtls: {mode: STRICT}}")),
            80,
            OUTSIDE,
            "nodemesh-system/mesh",
            "plaintext_strict"),
        allow(
            "namespace PERMISSIVE overrides mesh STRICT",
            List.of(
                peerAuthentication("nodemesh-system", "mesh", "{mtls: {mode: STRICT}}"),
                peerAuthentication("shop", "ns", "{mtls: {mode: PERMISSIVE}}")),
            80,
            OUTSIDE,
            "default-allow"),
        deny(
            "workload STRICT overrides namespace PERMISSIVE",
            List.of(
                peerAuthentication("shop", "ns", "{mtls: {mode: PERMISSIVE}}"),
                peerAuthentication(
                    "shop", "web", "{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}")),
            80,
            OUTSIDE,
            "shop/web",
            "plaintext_strict"),
        allow(
            "a workload selector for another workload does not apply",
            List.of(
                peerAuthentication(
                    "shop", "db", "{selector: {matchLabels: {app: db}}, mtls: {mode: STRICT}}")),
            80,
            OUTSIDE,
            "default-allow"),
        deny(
            "PERMISSIVE still applies policy to plaintext",
            List.of(
                peerAuthentication("shop", "p", "{mtls: {mode: PERMISSIVE}}"),
                allowFrom("a", "{principals: [\"*\"]}")),
            80,
            OUTSIDE,
            "default-deny",
            "no_allow_match"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void decides(Case c) throws Exception {
    List<String> docs = new ArrayList<>();
    docs.add(WORKLOADS);
    docs.addAll(c.policies());
    MeshYaml.write(dir, "mesh.yaml", MeshYaml.docs(docs.toArray(String[]::new)));
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    Workload destination = workload(snapshot, c.destination());

    Decision d = new PolicyAuthorizer().check(snapshot, destination, c.port(), c.source());

    assertEquals(new Decision(c.allowed(), c.policy(), c.reason()), d, c.name());
  }

  /** One L7 row: policies, the request (null: an L4 connection), expected decision. */
  private record L7Case(
      String name,
      List<String> policies,
      @Nullable HttpRequestInfo request,
      boolean allowed,
      String policy,
      String reason) {
    @Override
    public String toString() {
      return name;
    }
  }

  private static HttpRequestInfo req(String method, String path, String... headers) {
    java.util.Map<String, String> h = new java.util.HashMap<>();
    for (int i = 0; i < headers.length; i += 2) {
      h.put(headers[i], headers[i + 1]);
    }
    return new HttpRequestInfo(method, path, h::get);
  }

  private static String allowTo(String name, String to) {
    return authorizationPolicy(
        "shop",
        name,
        "{selector: {matchLabels: {app: web}}, action: ALLOW, rules: [{to: [" + to + "]}]}");
  }

  private static String denyTo(String name, String to) {
    return authorizationPolicy("shop", name, "{action: DENY, rules: [{to: [" + to + "]}]}");
  }

  static Stream<L7Case> l7Cases() {
    String getApi = allowTo("api", "{methods: [GET, HEAD], paths: [\"/api/*\"]}");
    return Stream.of(
        new L7Case(
            "method and path prefix",
            List.of(getApi),
            req("GET", "/api/x"),
            true,
            "shop/api",
            "allowed"),
        new L7Case(
            "method not listed",
            List.of(getApi),
            req("POST", "/api/x"),
            false,
            "default-deny",
            "no_allow_match"),
        new L7Case(
            "path outside the prefix",
            List.of(getApi),
            req("GET", "/admin"),
            false,
            "default-deny",
            "no_allow_match"),
        new L7Case(
            "exact path",
            List.of(allowTo("p", "{paths: [/healthz]}")),
            req("GET", "/healthz"),
            true,
            "shop/p",
            "allowed"),
        new L7Case(
            "exact path is not a prefix",
            List.of(allowTo("p", "{paths: [/healthz]}")),
            req("GET", "/healthz/x"),
            false,
            "default-deny",
            "no_allow_match"),
        new L7Case(
            "suffix path",
            List.of(allowTo("p", "{paths: [\"*.png\"]}")),
            req("GET", "/img/a.png"),
            true,
            "shop/p",
            "allowed"),
        new L7Case(
            "header pattern matches",
            List.of(allowTo("p", "{headers: {X-Role: \"admin*\"}}")),
            req("GET", "/", "x-role", "admin-eu"),
            true,
            "shop/p",
            "allowed"),
        new L7Case(
            "header absent",
            List.of(allowTo("p", "{headers: {x-role: \"*\"}}")),
            req("GET", "/"),
            false,
            "default-deny",
            "no_allow_match"),
        new L7Case(
            "notMethods",
            List.of(allowTo("p", "{notMethods: [DELETE]}")),
            req("DELETE", "/x"),
            false,
            "default-deny",
            "no_allow_match"),
        new L7Case(
            "DENY on a path before ALLOW of everything",
            List.of(allowTo("all", "{ports: [80]}"), denyTo("admin", "{paths: [\"/admin*\"]}")),
            req("GET", "/admin/users"),
            false,
            "shop/admin",
            "denied_by_policy"),
        new L7Case(
            "DENY on a path lets other paths through",
            List.of(allowTo("all", "{ports: [80]}"), denyTo("admin", "{paths: [\"/admin*\"]}")),
            req("GET", "/shop"),
            true,
            "shop/all",
            "allowed"),
        new L7Case(
            "L4: an ALLOW rule with L7 conditions cannot be proved (fail closed)",
            List.of(getApi),
            null,
            false,
            "default-deny",
            "no_allow_match"),
        new L7Case(
            "L4: a DENY rule with L7 conditions is assumed to match (fail closed)",
            List.of(allowTo("all", "{ports: [80]}"), denyTo("admin", "{paths: [\"/admin*\"]}")),
            null,
            false,
            "shop/admin",
            "denied_by_policy"),
        new L7Case(
            "L4: a plain L4 rule beside an L7 one still allows",
            List.of(getApi, allowTo("l4", "{ports: [80]}")),
            null,
            true,
            "shop/l4",
            "allowed"),
        new L7Case(
            "L4 rules apply to requests too",
            List.of(allowTo("l4", "{ports: [81]}")),
            req("GET", "/"),
            false,
            "default-deny",
            "no_allow_match"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("l7Cases")
  void decidesL7(L7Case c) throws Exception {
    List<String> docs = new ArrayList<>();
    docs.add(WORKLOADS);
    docs.addAll(c.policies());
    MeshYaml.write(dir, "mesh.yaml", MeshYaml.docs(docs.toArray(String[]::new)));
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    Workload destination = workload(snapshot, "web-1");
    PolicyAuthorizer authz = new PolicyAuthorizer();
    HttpRequestInfo request = c.request();

    Decision d =
        request == null
            ? authz.check(snapshot, destination, 80, FRONTEND)
            : authz.check(snapshot, destination, 80, FRONTEND, request);

    assertEquals(new Decision(c.allowed(), c.policy(), c.reason()), d, c.name());
  }

  @Test
  void l7RulesMarkTheirWorkloadsAndServicesForL7() throws Exception {
    MeshYaml.write(
        dir,
        "mesh.yaml",
        MeshYaml.docs(
            WORKLOADS,
            allowTo("api", "{methods: [GET]}"),
            authorizationPolicy(
                "shop", "l4", "{selector: {matchLabels: {app: db}}, rules: [{}]}")));
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    assertEquals(true, snapshot.needsL7Authorization(workload(snapshot, "web-1")));
    assertEquals(false, snapshot.needsL7Authorization(workload(snapshot, "db-1")));
  }

  /**
   * The connection-time check before per-request checks (the receiving side of an HBONE stream to a
   * workload with L7 rules): L7 conditions neither allow nor deny yet, everything else decides as
   * at L4, and the fail-closed L4 check on the same policies still refuses.
   */
  @Test
  void checkBeforeRequestsLeavesL7ConditionsToTheRequests() throws Exception {
    String getOk =
        authorizationPolicy(
            "shop",
            "get-ok",
            "{selector: {matchLabels: {app: web}}, action: ALLOW, rules: [{from: [{principals:"
                + " [\"*/ns/shop/sa/frontend\"]}], to: [{methods: [GET], paths: [\"/ok*\"]}]}]}");
    String denyAdmin = denyTo("deny-admin", "{paths: [\"/admin*\"]}");
    String denyDb =
        authorizationPolicy("shop", "deny-db", "{action: DENY, rules: [{to: [{ports: [5432]}]}]}");
    MeshYaml.write(dir, "mesh.yaml", MeshYaml.docs(WORKLOADS, getOk, denyAdmin, denyDb));
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    Workload web = workload(snapshot, "web-1");
    PolicyAuthorizer authz = new PolicyAuthorizer();

    assertEquals(
        new Decision(true, "shop/get-ok", "allowed"),
        authz.checkBeforeRequests(snapshot, web, 80, FRONTEND));
    // Not the principal the ALLOW rule names: no request can change that.
    assertEquals(
        new Decision(false, "default-deny", "no_allow_match"),
        authz.checkBeforeRequests(snapshot, web, 80, OTHER_NS));
    // An L4-only DENY rule still refuses the connection.
    assertEquals(
        new Decision(false, "shop/deny-db", "denied_by_policy"),
        authz.checkBeforeRequests(snapshot, web, 5432, FRONTEND));
    // Fail closed without the per-request check: the DENY rule's path cannot be ruled out.
    assertEquals(
        new Decision(false, "shop/deny-admin", "denied_by_policy"),
        authz.check(snapshot, web, 80, FRONTEND));
    // And per request, both rules decide.
    assertEquals(
        new Decision(true, "shop/get-ok", "allowed"),
        authz.check(snapshot, web, 80, FRONTEND, req("GET", "/ok/1")));
    assertEquals(
        new Decision(false, "shop/deny-admin", "denied_by_policy"),
        authz.check(snapshot, web, 80, FRONTEND, req("GET", "/admin")));
    assertEquals(
        new Decision(false, "default-deny", "no_allow_match"),
        authz.check(snapshot, web, 80, FRONTEND, req("POST", "/ok")));
    // An authorizer without its own version keeps the fail-closed check.
    Authorizer plain = (s, d, p, src) -> authz.check(s, d, p, src);
    assertEquals(
        authz.check(snapshot, web, 80, FRONTEND),
        plain.checkBeforeRequests(snapshot, web, 80, FRONTEND));
  }

  @Test
  void rootNamespacePoliciesApplyOnceToRootWorkloads() throws Exception {
    MeshYaml.write(
        dir,
        "mesh.yaml",
        MeshYaml.docs(WORKLOADS, authorizationPolicy("nodemesh-system", "deny-all", "{}")));
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    Decision d = new PolicyAuthorizer().check(snapshot, workload(snapshot, "sys-1"), 80, FRONTEND);
    assertEquals(new Decision(false, "nodemesh-system/deny-all", "default_deny"), d);
  }

  @Test
  void patterns() {
    assertEquals(true, PolicyAuthorizer.pattern("*", "x"));
    assertEquals(true, PolicyAuthorizer.pattern("a*", "abc"));
    assertEquals(false, PolicyAuthorizer.pattern("a*", "bac"));
    assertEquals(true, PolicyAuthorizer.pattern("*c", "abc"));
    assertEquals(false, PolicyAuthorizer.pattern("*c", "cab"));
    assertEquals(true, PolicyAuthorizer.pattern("abc", "abc"));
    assertEquals(false, PolicyAuthorizer.pattern("abc", "abcd"));
    assertEquals(false, PolicyAuthorizer.anyPattern(List.of("*"), null));
  }

  private static Workload workload(ConfigSnapshot snapshot, String name) {
    @Nullable Workload found = null;
    for (Workload w : snapshot.workloads()) {
      if (w.name().equals(name)) {
        found = w;
      }
    }
    assertNotNull(found, name);
    return Objects.requireNonNull(found);
  }
}
