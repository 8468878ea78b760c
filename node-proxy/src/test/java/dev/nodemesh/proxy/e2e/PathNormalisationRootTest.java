package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Path normalisation end to end with curl's {@code --request-target} (which sends the target
 * exactly as given), over HTTP/1.1 and h2c: under a DENY of {@code /admin*} every bypass of the
 * unit table is refused (403, or 400 when the normalisation refuses the target), and so is every
 * climb out of {@code /public/} under an ALLOW of {@code /public/*} only; the app receives the
 * normalised path, and a refused request never reaches it. In both interception modes.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class PathNormalisationRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  static final String DENY_VIP = "10.97.0.50"; // Service web: DENY /admin*
  static final String ALLOW_VIP = "10.97.0.51"; // Service ok: ALLOW /public/* only

  /** Targets that name /admin (or climb to it) and that the normalisation accepts: 403. */
  static final List<String> DENIED =
      List.of(
          "/admin",
          "/admin/",
          "/admin/users",
          "/%61dmin",
          "/adm%69n",
          "/%61%64%6d%69%6e/x",
          "/./admin",
          "/x/../admin",
          "/x/y/../../admin",
          "/../admin",
          "/public/../admin",
          "//admin",
          "///admin/users",
          "/x//../admin",
          "/x/%2e%2e/admin",
          "/x/%2E%2E/admin",
          "/x/.%2e/admin",
          "/%2e/admin",
          "/admin?x=/../public",
          "http://web/admin",
          "HTTP://web/x/../admin");

  /** Targets the normalisation refuses: 400, and the app never sees them. */
  static final List<String> REFUSED =
      List.of(
          "/public/..;/admin",
          "/public/.;/admin",
          "/x%2F..%2Fadmin",
          "/x%2f..%2fadmin",
          "/x/..%5Cadmin",
          "/x\\..\\admin",
          "/admin%00",
          "/admin%00.png",
          "/admin%0d%0aX:%201",
          "/%",
          "/admin%4",
          "/%zzadmin",
          "/%u0061dmin",
          "/x/%c0%ae%c0%ae/admin",
          "/x/%e0%80%ae/admin",
          "http://user@web/admin");

  /** Allowed targets and the path (and query) the app must receive. */
  static final Map<String, String> FORWARDED =
      Map.of(
          "/%70ublic/./a?q=/../admin", "/public/a?q=/../admin",
          "//public//b", "/public/b",
          "/public/x/../c", "/public/c",
          "/public/%7euser/%2c", "/public/~user/%2C",
          "http://web/public/d", "/public/d");

  @org.junit.jupiter.api.io.TempDir Path tmp;
  private TestNode node;
  private HttpTestServer web;
  private HttpTestServer ok;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp.resolve("node"));
    node.addPod("client", 10);
    node.addPod("web-1", 11);
    node.addPod("ok-1", 12);
    web = node.serveHttp("web-1", 8080);
    ok = node.serveHttp("ok-1", 8080);
    node.writeConfig(
        "pods.yaml",
        Mesh.httpPod("client", 10, "client")
            + Mesh.httpPod("web-1", 11, "web")
            + Mesh.httpPod("ok-1", 12, "ok"));
    node.writeConfig(
        "services.yaml",
        Mesh.httpService("web", DENY_VIP, "web") + Mesh.httpService("ok", ALLOW_VIP, "ok"));
    node.writeConfig("policy.yaml", POLICY);
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    for (String p : List.of("client", "web-1", "ok-1")) {
      node.enrol(p);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"http1", "h2c"})
  void aDenyOfAdminHoldsAgainstEveryBypass(String protocol) throws Exception {
    boolean h2 = protocol.equals("h2c");
    int before = web.requests();
    List<String> wrong = new ArrayList<>();
    for (String target : DENIED) {
      expect(wrong, h2, DENY_VIP, target, "403");
    }
    for (String target : REFUSED) {
      expect(wrong, h2, DENY_VIP, target, "400");
    }
    assertTrue(wrong.isEmpty(), String.join("\n", wrong));
    assertEquals(before, web.requests(), "a refused request reached the app");

    for (Map.Entry<String, String> e : FORWARDED.entrySet()) {
      String body = curl(h2, "-s", "--request-target", e.getKey(), "http://" + DENY_VIP + "/");
      assertTrue(body.contains("pod=web-1\n"), e.getKey() + " -> " + body);
      assertTrue(body.contains("uri=" + e.getValue() + "\n"), e.getKey() + " -> " + body);
    }
    assertEquals(before + FORWARDED.size(), web.requests());
    // An absolute-form target's authority is the Host the app sees.
    String body =
        curl(
            h2,
            "-s",
            "-H",
            "Host: elsewhere",
            "--request-target",
            "http://web:80/%70ublic",
            "http://" + DENY_VIP + "/");
    assertTrue(body.contains("uri=/public\n") && body.contains("h:host=web:80\n"), body);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"http1", "h2c"})
  void anAllowOfPublicOnlyCannotBeClimbedOutOf(String protocol) throws Exception {
    boolean h2 = protocol.equals("h2c");
    List<String> wrong = new ArrayList<>();
    expect(wrong, h2, ALLOW_VIP, "/public/a", "200");
    int before = ok.requests();
    for (String target :
        List.of(
            "/admin",
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/%2E./admin",
            "/public/./../admin",
            "/public//../admin",
            "/public/x/../../admin",
            "http://ok/public/../admin")) {
      expect(wrong, h2, ALLOW_VIP, target, "403");
    }
    for (String target :
        List.of(
            "/public/..;/admin", "/public/..%2Fadmin", "/public/..%5cadmin", "/public\\..\\a")) {
      expect(wrong, h2, ALLOW_VIP, target, "400");
    }
    assertTrue(wrong.isEmpty(), String.join("\n", wrong));
    assertEquals(before, ok.requests(), "a refused request reached the app");
  }

  /**
   * Bytes curl cannot send: raw control characters in an HTTP/1.1 request line get 400 and never
   * reach the app.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"/admin\u0001", "/adm\u0000in", "/ad\u007fmin", "/adm\u00c0\u00aein"})
  void rawBadBytesInTheRequestLineGet400(String target) throws Exception {
    int before = web.requests();
    // A pod process (eBPF mode intercepts only those), the target's bytes in hex (NUL cannot be
    // an argument).
    String head =
        node.podExec(
            "client",
            "/usr/bin/python3",
            "-c",
            "import socket, sys\n"
                + "s = socket.create_connection((sys.argv[2], 80), timeout=10)\n"
                + "s.sendall(b'GET ' + bytes.fromhex(sys.argv[1]) + b' HTTP/1.1\\r\\nHost: web\\r\\n\\r\\n')\n"
                + "d = b''\n"
                + "while len(d) < 12:\n"
                + "  c = s.recv(64)\n"
                + "  if not c: break\n"
                + "  d += c\n"
                + "print(d[:12].decode('latin-1'))\n",
            java.util.HexFormat.of().formatHex(target.getBytes(StandardCharsets.ISO_8859_1)),
            DENY_VIP);
    assertTrue(head.startsWith("HTTP/1.1 400"), head);
    assertEquals(before, web.requests());
  }

  private void expect(List<String> wrong, boolean h2, String vip, String target, String code)
      throws IOException {
    String got =
        curl(
            h2,
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--request-target",
            target,
            "http://" + vip + "/");
    if (!got.equals(code)) {
      wrong.add(target + ": " + got + ", expected " + code);
    }
  }

  private String curl(boolean h2, String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("curl", "--max-time", "20"));
    if (h2) {
      cmd.add("--http2-prior-knowledge");
    }
    cmd.addAll(List.of(args));
    return node.podExec("client", cmd.toArray(String[]::new));
  }

  static final String POLICY =
      Mesh.DENY_ADMIN_TO_WEB
          + """
      apiVersion: security.nodemesh.dev/v1alpha1
      kind: AuthorizationPolicy
      metadata: {name: public-only, namespace: default}
      spec:
        selector: {matchLabels: {app: ok}}
        action: ALLOW
        rules:
          - to: [{paths: ["/public/*"]}]
      """;
}
