package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.GrpcTestServer;
import dev.nodemesh.proxy.testing.H2TestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * L7 authorization for a caller on another node that speaks HTTP/2 inside the tunnel, in both
 * interception modes: an h2c client (python h2) and a gRPC client (python3-grpcio) in node-1's
 * client pod send allowed and denied requests as concurrent streams of one connection, through the
 * Service VIP (node-1's L7 path puts HTTP/2 in the tunnel for an h2c/grpc port) and to the pod IP
 * (node-1 relays the bytes at L4). node-2 parses the HTTP/2 inside the HBONE stream and checks each
 * request with the caller's SPIFFE ID: a denied stream gets 403 (gRPC: PERMISSION_DENIED), and only
 * that stream; the others, before and after it on the same connection, reach the app.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class CrossNodeH2PolicyRootTest {
  private static final String VIP = "10.97.0.51";
  private static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client";

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TwoNodeCluster cluster;
  private Interception.Setup modes;
  private H2TestServer web;
  private GrpcTestServer grpc;

  @BeforeEach
  void setUp() throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp);
    cluster.node1.addPod("client", 10);
    cluster.node2.addPod("web-1", 11);
    web = cluster.node2.serveH2("web-1", 8080);
    grpc = cluster.node2.serveGrpc("web-1", 9090, "Who", "Other");
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", cluster.node1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("web-1", cluster.node2.ip("web-1"), "web", "node-2", "web"));
    cluster.writeConfig("services.yaml", SERVICE.formatted(VIP));
    cluster.writeConfig("policy.yaml", POLICY.formatted(CLIENT, CLIENT));
    cluster.startProxiesWithPolicy(modes);
    cluster.node1.enrol("client");
    cluster.node2.enrol("web-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(cluster, modes);
  }

  @Test
  void eachH2cStreamIsCheckedAndADeniedOneLeavesTheOthersAlone() throws Exception {
    for (String[] to :
        List.of(new String[] {VIP, "80"}, new String[] {cluster.node2.ip("web-1"), "8080"})) {
      int streamsBefore = web.streams();
      String out =
          python(
              H2_CLIENT,
              to[0],
              to[1],
              "GET:/ok/1",
              "GET:/admin",
              "POST:/ok/posted",
              "GET:/%6Fk/x",
              "GET:/ok/../admin",
              "GET:/ok/3");
      String where = String.join(":", to) + " -> " + out;
      // All six were sent before any answer was read: six streams of one connection at once.
      assertEquals(
          "/ok/1=200 /admin=403 /ok/posted=403 /%6Fk/x=200 /ok/../admin=403 /ok/3=200"
              + " | /ok/after=200",
          out.lines().findFirst().orElse(""), where);
      // The allowed ones reached the app with the path the policy read; the refused ones never.
      assertTrue(out.contains("body /%6Fk/x uri=/ok/x"), where);
      assertTrue(out.contains("body /ok/3 uri=/ok/3"), where);
      assertTrue(out.contains("body /admin 403 RBAC: access denied"), where);
      assertEquals(4, web.streams() - streamsBefore, where);
    }
    cluster.node2.assertCounted(
        "nodemesh_policy_denials_total",
        "reason=\"no_allow_match\"",
        "reporter=\"destination\"",
        "source_principal=\"" + CLIENT + "\"");
  }

  @Test
  void aDeniedGrpcMethodIsPermissionDeniedAndTheChannelsOtherCallsGoThrough() throws Exception {
    for (String host : List.of(VIP, cluster.node2.ip("web-1"))) {
      int callsBefore = grpc.calls();
      String out = python(GRPC_CLIENT, host);
      // Who, Other, Who started together on one channel (one HTTP/2 connection), then Who again.
      assertEquals("web-1 PERMISSION_DENIED web-1 | web-1", out.strip(), host);
      assertEquals(3, grpc.calls() - callsBefore, host + ": only the allowed calls reached it");
    }
  }

  private String python(String script, String... args) throws Exception {
    Path file = Files.createTempFile(tmp, "client", ".py");
    Files.writeString(file, script, StandardCharsets.UTF_8);
    List<String> cmd = new ArrayList<>();
    // /usr/bin/python3: the Debian interpreter that python3-h2 and python3-grpcio are installed
    // for.
    cmd.addAll(List.of("env", "-u", "http_proxy", "-u", "https_proxy", "/usr/bin/python3"));
    cmd.add(file.toString());
    cmd.addAll(List.of(args));
    return cluster.node1.podExec("client", cmd.toArray(String[]::new));
  }

  /**
   * One h2c connection (prior knowledge): every request of argv[3:] ("METHOD:path", POST with a
   * small body) sent as its own stream before anything is read, then, once all have ended, one more
   * on the same connection. Prints "path=status ... | /ok/after=status", then each response body's
   * first line.
   */
  private static final String H2_CLIENT =
      """
      import socket, sys
      import h2.config, h2.connection, h2.events
      host, port, reqs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
      s = socket.create_connection((host, port), timeout=15)
      c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
      c.initiate_connection()
      status, body, ended = {}, {}, set()

      def send(method, path):
          sid = c.get_next_available_stream_id()
          hs = [(':method', method), (':path', path), (':scheme', 'http'), (':authority', 'web')]
          if method == 'POST':
              c.send_headers(sid, hs)
              c.send_data(sid, b'x=1', end_stream=True)
          else:
              c.send_headers(sid, hs, end_stream=True)
          return sid

      def run(ids):
          s.sendall(c.data_to_send())
          while not all(i in ended for i in ids):
              data = s.recv(65536)
              if not data:
                  break
              for e in c.receive_data(data):
                  if isinstance(e, h2.events.ResponseReceived):
                      status[e.stream_id] = dict(e.headers)[b':status'].decode()
                  elif isinstance(e, h2.events.DataReceived):
                      body[e.stream_id] = body.get(e.stream_id, b'') + e.data
                      c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                  elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
                      ended.add(e.stream_id)
              s.sendall(c.data_to_send())

      first = {send(*r.split(':', 1)): r.split(':', 1)[1] for r in reqs}
      run(first)
      after = {send('GET', '/ok/after'): '/ok/after'}
      run(after)
      line = lambda ids: ' '.join('%s=%s' % (p, status.get(i, 'none')) for i, p in ids.items())
      print(line(first) + ' | ' + line(after))
      for i, p in first.items():
          b = body.get(i, b'').decode('latin-1')
          print('body', p, next((l for l in b.splitlines() if 'uri=' in l or 'RBAC' in l), b[:40]))
      """;

  /** Who, Other and Who as concurrent calls on one channel, then Who once more. */
  private static final String GRPC_CLIENT =
      """
      import sys, grpc
      ch = grpc.insecure_channel(sys.argv[1] + ":9090", options=[("grpc.enable_http_proxy", 0)])
      who = ch.unary_unary("/test.Echo/Who")
      other = ch.unary_unary("/test.Echo/Other")
      def result(f):
          try:
              return f.result().decode()
          except grpc.RpcError as e:
              return e.code().name
      fs = [who.future(b"x", timeout=10), other.future(b"x", timeout=10), who.future(b"x", timeout=10)]
      first = " ".join(result(f) for f in fs)
      print(first + " | " + result(who.future(b"x", timeout=10)))
      """;

  private static final String POLICY =
      """
      apiVersion: security.nodemesh.dev/v1alpha1
      kind: AuthorizationPolicy
      metadata: {name: get-ok-and-who, namespace: default}
      spec:
        selector: {matchLabels: {app: web}}
        action: ALLOW
        rules:
          - from: [{principals: ["%s"]}]
            to: [{methods: [GET], paths: ["/ok*"]}]
          - from: [{principals: ["%s"]}]
            to: [{methods: [POST], paths: ["/test.Echo/Who"]}]
      """;

  private static final String SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: default}
      spec:
        clusterIP: %s
        selector: {app: web}
        ports:
          - {name: h2c, port: 80, targetPort: 8080, appProtocol: kubernetes.io/h2c}
          - {name: grpc, port: 9090, targetPort: 9090, appProtocol: grpc}
      """;
}
