package dev.nodemesh.proxy.l7;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.accesslog.AccessLog;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP/1.1 downstream pipeline in an EmbeddedChannel: requests answered by the proxy itself (no
 * route, a bad backend, no endpoint, malformed or oversized input), pipelining, and one bad request
 * never taking another connection with it. No upstream is ever opened here.
 */
class RequestHandlerTest {
  private static DataPlane plane;
  private static RequestHandler.Context cx;
  private final List<EmbeddedChannel> channels = new ArrayList<>();

  @BeforeAll
  static void setUp(@TempDir Path dir) throws Exception {
    MeshYaml.write(dir, "pods.yaml", pod("default", "client", "10.1.0.10", "{app: client}", "[]"));
    MeshYaml.write(
        dir,
        "services.yaml",
        docs(
            service("default", "web", "[10.96.0.1]", "{app: web}", "[{name: http, port: 80}]"),
            service("default", "none", "[10.96.0.2]", "{app: none}", "[{name: http, port: 80}]")));
    MeshYaml.write(
        dir,
        "routes.yaml",
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: web}
        spec:
          parentRefs: [{kind: Service, name: web}]
          rules:
            - matches: [{path: {type: PathPrefix, value: /none}}]
              backendRefs: [{name: none, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /missing}}]
              backendRefs: [{name: missing, port: 80}]
        """);
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    plane =
        DataPlane.builder(
                null,
                null,
                null,
                new SnapshotHolder(snapshot),
                new PodRegistry(),
                new ProxyMetrics("test-node"),
                null,
                0x539)
            .build();
    EnrolledPod client =
        new EnrolledPod(
            "uid-client",
            "client",
            "default",
            "/dev/null",
            List.of(java.net.InetAddress.getByName("10.1.0.10")),
            null);
    cx =
        new RequestHandler.Context(
            plane,
            client,
            snapshot.serviceByName(new NamespacedName("default", "web")),
            80,
            new InetSocketAddress("10.96.0.1", 80),
            "10.1.0.10",
            false,
            new HttpLimits(256, 512, 1024),
            new RequestMeters());
  }

  /** The shared context, for the h2c tests next door. */
  static RequestHandler.Context context() {
    return cx;
  }

  @AfterEach
  void tearDown() {
    for (EmbeddedChannel ch : channels) {
      ch.finishAndReleaseAll();
    }
  }

  private EmbeddedChannel server() {
    EmbeddedChannel ch = new EmbeddedChannel();
    HttpProxy.installHttp1(ch.pipeline(), cx);
    channels.add(ch);
    return ch;
  }

  /** Sends raw bytes, returns the responses the proxy wrote, decoded by a client codec. */
  private static List<FullHttpResponse> exchange(EmbeddedChannel server, String raw, int requests) {
    if (!raw.isEmpty()) {
      server.writeInbound(Unpooled.copiedBuffer(raw, StandardCharsets.ISO_8859_1));
    }
    EmbeddedChannel client =
        new EmbeddedChannel(new HttpClientCodec(), new HttpObjectAggregator(1 << 16));
    try {
      // The client codec pairs responses with request methods: tell it about GETs.
      for (int i = 0; i < requests; i++) {
        client.writeOutbound(
            new io.netty.handler.codec.http.DefaultFullHttpRequest(
                io.netty.handler.codec.http.HttpVersion.HTTP_1_1,
                io.netty.handler.codec.http.HttpMethod.GET,
                "/"));
      }
      client.releaseOutbound();
      ByteBuf out;
      while ((out = server.readOutbound()) != null) {
        client.writeInbound(out);
      }
      List<FullHttpResponse> responses = new ArrayList<>();
      FullHttpResponse r;
      while ((r = client.readInbound()) != null) {
        responses.add(r);
      }
      return responses;
    } finally {
      client.finishAndReleaseAll();
    }
  }

  private static int status(FullHttpResponse r) {
    try {
      return r.status().code();
    } finally {
      r.release();
    }
  }

  @Test
  void localAnswersForNoRouteBadBackendAndNoEndpoint() {
    EmbeddedChannel ch = server();
    double before = clientErrors();
    List<FullHttpResponse> rs =
        exchange(
            ch,
            "GET /elsewhere HTTP/1.1\r\nHost: web\r\n\r\n"
                + "GET /missing HTTP/1.1\r\nHost: web\r\n\r\n"
                + "POST /none HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /elsewhere HTTP/1.1\r\nHost: web\r\n\r\n",
            4);
    assertEquals(4, rs.size());
    assertEquals(404, status(rs.get(0)));
    assertEquals(500, status(rs.get(1)));
    assertEquals(503, status(rs.get(2))); // its body was read and dropped, the next one parsed
    assertEquals(404, status(rs.get(3)));
    assertTrue(ch.isOpen(), "local answers keep the connection");
    assertEquals(2.0, clientErrors() - before); // the two 404s (other tests share the meters)
  }

  private static double clientErrors() {
    return plane
        .metrics()
        .http(
            new dev.nodemesh.proxy.metrics.TrafficLabels(
                "source",
                "client",
                "default",
                "unknown",
                "default",
                "web.default",
                "unknown",
                "unknown"))
        .count(4);
  }

  @Test
  void aRefusedRequestsBodyIsDroppedOnlyUpToTheCapThenTheConnectionCloses() {
    EmbeddedChannel ch = server();
    // Announces a gigabyte; the 503 goes out at once and the body is dropped as it comes, but
    // only up to MAX_DISCARDED_BODY: past it the proxy stops reading and closes.
    List<FullHttpResponse> rs =
        exchange(ch, "POST /none HTTP/1.1\r\nHost: web\r\nContent-Length: 1073741824\r\n\r\n", 1);
    assertEquals(List.of(503), List.of(status(rs.get(0))));
    byte[] chunk = new byte[64 << 10];
    long fed = 0;
    while (ch.isOpen() && fed < 4 * RequestHandler.MAX_DISCARDED_BODY) {
      ch.writeInbound(Unpooled.wrappedBuffer(chunk));
      ch.runPendingTasks();
      fed += chunk.length;
    }
    assertFalse(ch.isOpen(), "still open after " + fed + " bytes of a refused body");
    assertTrue(fed <= RequestHandler.MAX_DISCARDED_BODY + 2 * chunk.length, "closed after " + fed);
  }

  @Test
  void chunkedBodyOfARefusedRequestIsDrained() {
    EmbeddedChannel ch = server();
    List<FullHttpResponse> rs =
        exchange(
            ch,
            "POST /none HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n0\r\n\r\n"
                + "GET /x HTTP/1.1\r\nHost: web\r\n\r\n",
            2);
    assertEquals(List.of(503, 404), List.of(status(rs.get(0)), status(rs.get(1))));
  }

  @Test
  void malformedRequestGets400AndClosesOnlyItsConnection() {
    EmbeddedChannel bad = server();
    EmbeddedChannel good = server();
    List<FullHttpResponse> rs =
        exchange(bad, "GET /x HTTP/1.1\r\nHost: web\r\nno colon here\r\n\r\n", 1);
    assertEquals(400, status(rs.get(0)));
    assertFalse(bad.isOpen());
    List<FullHttpResponse> ok = exchange(good, "GET /x HTTP/1.1\r\nHost: web\r\n\r\n", 1);
    assertEquals(404, status(ok.get(0)));
    assertTrue(good.isOpen());
  }

  @Test
  void theRouterSeesTheNormalisedPathAndABadTargetGets400() {
    EmbeddedChannel ch = server();
    // Raw, "/x/../missing" matches no rule (404); normalised it is /missing (500, no such Service).
    List<FullHttpResponse> rs =
        exchange(
            ch,
            "GET /x/../%6Dissing HTTP/1.1\r\nHost: web\r\n\r\n"
                + "GET //missing HTTP/1.1\r\nHost: web\r\n\r\n"
                + "GET http://web/x/%2e%2e/missing HTTP/1.1\r\nHost: other\r\n\r\n",
            3);
    assertEquals(List.of(500, 500, 500), rs.stream().map(RequestHandlerTest::status).toList());
    // A target the normalisation refuses is answered like any malformed request.
    EmbeddedChannel bad = server();
    List<FullHttpResponse> refused = exchange(bad, "GET /a%2Fb HTTP/1.1\r\nHost: web\r\n\r\n", 1);
    assertEquals(400, status(refused.get(0)));
  }

  @Test
  void oversizedHeadersGet431AndALongLine414() {
    EmbeddedChannel ch = server();
    String big = "x-big: " + "a".repeat(600) + "\r\n";
    List<FullHttpResponse> rs = exchange(ch, "GET /x HTTP/1.1\r\nHost: web\r\n" + big + "\r\n", 1);
    assertEquals(431, status(rs.get(0)));
    assertFalse(ch.isOpen());

    EmbeddedChannel ch2 = server();
    List<FullHttpResponse> rs2 =
        exchange(ch2, "GET /" + "p".repeat(300) + " HTTP/1.1\r\nHost: web\r\n\r\n", 1);
    assertEquals(414, status(rs2.get(0)));
  }

  @Test
  void aClientFinClosesAnIdleConnectionAtOnce() {
    EmbeddedChannel ch = server();
    List<FullHttpResponse> rs = exchange(ch, "GET /x HTTP/1.1\r\nHost: web\r\n\r\n", 1);
    assertEquals(404, status(rs.get(0)));
    assertTrue(ch.isOpen());
    ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    ch.runPendingTasks();
    assertFalse(ch.isOpen(), "a half-closed idle connection would stay in CLOSE-WAIT");
  }

  @Test
  void aClientFinAfterPipelinedRequestsClosesOnceTheyAreAnswered() {
    EmbeddedChannel ch = server();
    ch.writeInbound(
        Unpooled.copiedBuffer(
            "GET /a HTTP/1.1\r\nHost: web\r\n\r\nGET /b HTTP/1.1\r\nHost: web\r\n\r\n",
            StandardCharsets.ISO_8859_1));
    ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    ch.runPendingTasks();
    List<FullHttpResponse> rs = exchange(ch, "", 2);
    assertEquals(List.of(404, 404), List.of(status(rs.get(0)), status(rs.get(1))));
    assertFalse(ch.isOpen());
  }

  @Test
  void aClientFinInsideARequestBodyClosesTheConnection() {
    EmbeddedChannel ch = server();
    ch.writeInbound(
        Unpooled.copiedBuffer(
            "POST /none HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n",
            StandardCharsets.ISO_8859_1));
    ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    ch.runPendingTasks();
    assertFalse(ch.isOpen());
  }

  @Test
  void connectionCloseIsHonoured() {
    EmbeddedChannel ch = server();
    List<FullHttpResponse> rs =
        exchange(ch, "GET /x HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n", 1);
    assertEquals(404, status(rs.get(0)));
    assertFalse(ch.isOpen());
    assertNull(ch.readOutbound());
  }

  @Test
  void everyRequestGetsAnAccessLogLineSayingWhyTheProxyAnsweredItself(@TempDir Path dir)
      throws Exception {
    Path file = dir.resolve("access.log");
    ProxyMetrics metrics = new ProxyMetrics("test-node");
    AccessLog accessLog =
        AccessLog.start(
            AccessLogSettings.parse(file.toString(), 1.0), "test-node", metrics.registry());
    DataPlane logged =
        DataPlane.builder(
                null, null, null, plane.snapshots(), new PodRegistry(), metrics, null, 0x539)
            .accessLog(accessLog)
            .build();
    RequestHandler.Context withLog =
        new RequestHandler.Context(
            logged,
            cx.source(),
            cx.service(),
            cx.servicePort(),
            cx.dialled(),
            cx.clientIp(),
            false,
            cx.limits(),
            new RequestMeters());
    EmbeddedChannel ch = new EmbeddedChannel();
    HttpProxy.installHttp1(ch.pipeline(), withLog);
    channels.add(ch);
    List<FullHttpResponse> rs =
        exchange(
            ch,
            "GET /elsewhere?token=secret HTTP/1.1\r\nHost: web\r\n\r\n"
                + "GET /missing HTTP/1.1\r\nHost: web\r\n\r\n"
                + "GET /x HTTP/1.1\r\nHost: web\r\nno colon here\r\n\r\n",
            3);
    assertEquals(List.of(404, 500, 400), rs.stream().map(RequestHandlerTest::status).toList());
    accessLog.close(); // writes what is queued
    List<JsonNode> lines = new ArrayList<>();
    for (String l : Files.readAllLines(file)) {
      lines.add(new ObjectMapper().readTree(l));
    }
    assertEquals(3, lines.size(), lines.toString());
    assertEquals("/elsewhere", lines.get(0).get("http_path").asText(), "no query string");
    assertEquals(404, lines.get(0).get("http_status").asInt());
    assertEquals("GET", lines.get(0).get("http_method").asText());
    assertEquals("NR", lines.get(0).get("response_flags").asText());
    assertEquals(500, lines.get(1).get("http_status").asInt());
    assertEquals("NR", lines.get(1).get("response_flags").asText());
    assertEquals(400, lines.get(2).get("http_status").asInt());
    assertEquals("DPE", lines.get(2).get("response_flags").asText());
    assertEquals("client", lines.get(0).get("source_workload").asText());
  }

  @Test
  void aThousandSmallHeadersGet431AsOverHttp2() {
    EmbeddedChannel ch = new EmbeddedChannel();
    HttpProxy.installHttp1(
        ch.pipeline(),
        new RequestHandler.Context(
            cx.plane(),
            cx.source(),
            cx.service(),
            cx.servicePort(),
            cx.dialled(),
            cx.clientIp(),
            false,
            HttpLimits.DEFAULT,
            new RequestMeters()));
    channels.add(ch);
    StringBuilder raw = new StringBuilder("GET /x HTTP/1.1\r\nHost: web\r\n");
    for (int i = 0; i < 1000; i++) {
      raw.append("x-h").append(i).append(": v\r\n"); // 8 KB: under the bytes, over the count
    }
    List<FullHttpResponse> rs = exchange(ch, raw.append("\r\n").toString(), 1);
    assertEquals(431, status(rs.get(0)));
  }
}
