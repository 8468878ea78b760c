package dev.nodemesh.proxy.l7;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.outbound.Route;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.upstream.UpstreamPools;
import io.micrometer.core.instrument.Counter;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The exchange's state machine without root or sockets: the {@link RequestHandler} in an
 * EmbeddedChannel (its clock frozen and advanced by the test), a fake {@link ExchangeUpstreams}
 * whose acquisitions the test completes or fails, and upstream exchanges that are EmbeddedChannels
 * the test answers through the bound sink. Retries, the budget, backoff, replay and timeouts.
 */
class ExchangeTest {
  private static ConfigSnapshot snapshot;
  private static EnrolledPod client;
  private DataPlane plane;
  private FakeUpstreams upstreams;
  private final List<EmbeddedChannel> channels = new ArrayList<>();

  @BeforeAll
  static void config(@TempDir Path dir) throws Exception {
    MeshYaml.write(
        dir,
        "pods.yaml",
        docs(
            pod("default", "client", "10.1.0.10", "{app: client}", "[]"),
            pod("default", "web-1", "10.1.0.11", "{app: web}", "[]"),
            pod("default", "web-2", "10.1.0.12", "{app: web}", "[]")));
    MeshYaml.write(
        dir,
        "services.yaml",
        service("default", "web", "[10.96.0.1]", "{app: web}", "[{name: http, port: 80}]"));
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
            - matches: [{path: {type: PathPrefix, value: /retry}}]
              backendRefs: [{name: web, port: 80}]
              retry: {attempts: 2, codes: [503], backoff: 10ms}
            - matches: [{path: {type: PathPrefix, value: /timeout}}]
              backendRefs: [{name: web, port: 80}]
              timeouts: {request: 1s}
            - matches: [{path: {type: PathPrefix, value: /slow}}]
              backendRefs: [{name: web, port: 80}]
              timeouts: {request: 1s, backendRequest: 100ms}
              retry: {attempts: 1, codes: [503], backoff: 10ms}
            - matches: [{path: {type: PathPrefix, value: /fault}}]
              filters:
                - type: ExtensionRef
                  extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: teapot}
              backendRefs: [{name: web, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /old}}]
              filters:
                - type: RequestRedirect
                  requestRedirect:
                    statusCode: 301
                    path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
        ---
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: HTTPFault
        metadata: {name: teapot}
        spec:
          delay: {fixedDelay: 50ms, percentage: 100}
          abort: {httpStatus: 418, percentage: 100}
        ---
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: web}
        spec:
          targetRef: {kind: Service, name: web}
          retry: {budgetPercent: 0, minRetryConcurrency: 1, backoff: {base: 10ms, max: 10ms}}
        """);
    snapshot = ConfigLoader.load(dir);
    client =
        new EnrolledPod(
            "uid-client",
            "client",
            "default",
            "/dev/null",
            List.of(InetAddress.getByName("10.1.0.10")),
            null);
  }

  @BeforeEach
  void plane() {
    plane = plane(ConnectionTimeouts.DEFAULT);
    upstreams = new FakeUpstreams();
  }

  /** A plane (so a TrafficState, retry budget and meters) of this test's own. */
  private static DataPlane plane(ConnectionTimeouts timeouts) {
    return DataPlane.builder(
            null,
            null,
            null,
            new SnapshotHolder(snapshot),
            new PodRegistry(),
            new ProxyMetrics("test-node"),
            null,
            0x539)
        .timeouts(timeouts)
        .build();
  }

  @AfterEach
  void tearDown() {
    for (EmbeddedChannel ch : channels) {
      ch.finishAndReleaseAll();
    }
  }

  /** Upstream exchanges the test hands out, answers and watches being given back. */
  private final class FakeUpstreams implements ExchangeUpstreams {
    final ArrayDeque<Promise<Channel>> waiting = new ArrayDeque<>();
    final List<InetSocketAddress> targets = new ArrayList<>();
    final Map<Channel, UpstreamPools.ResponseSink> sinks = new HashMap<>();
    final List<Boolean> released = new ArrayList<>();

    @Override
    public Future<Channel> acquire(
        RequestHandler.Context cx, Channel downstream, Route.ToService target, boolean h2) {
      Promise<Channel> p = downstream.eventLoop().newPromise();
      waiting.add(p);
      targets.add(target.upstream());
      return p;
    }

    @Override
    public void bind(Channel exchange, UpstreamPools.ResponseSink sink) {
      sinks.put(exchange, sink);
    }

    @Override
    public void release(Channel exchange, boolean reusable) {
      released.add(reusable);
    }

    /** Completes the oldest acquisition with a new upstream exchange. */
    EmbeddedChannel connect() {
      EmbeddedChannel up = new EmbeddedChannel();
      channels.add(up);
      waiting.remove().setSuccess(up);
      return up;
    }

    void refuse() {
      waiting.remove().setFailure(new IOException("connection refused"));
    }

    void answer(EmbeddedChannel up, int status, String body) {
      sinks
          .get(up)
          .response(
              up,
              new DefaultFullHttpResponse(
                  HttpVersion.HTTP_1_1,
                  HttpResponseStatus.valueOf(status),
                  Unpooled.copiedBuffer(body, StandardCharsets.UTF_8)));
    }
  }

  private EmbeddedChannel downstream() {
    RequestHandler.Context cx =
        new RequestHandler.Context(
            plane,
            client,
            snapshot.serviceByName(new NamespacedName("default", "web")),
            80,
            new InetSocketAddress("10.96.0.1", 80),
            "10.1.0.10",
            false,
            new HttpLimits(8192, 16384, 1024),
            new RequestMeters());
    EmbeddedChannel ch = new EmbeddedChannel(new RequestHandler(cx, upstreams));
    ch.freezeTime();
    channels.add(ch);
    return ch;
  }

  private static void send(EmbeddedChannel down, HttpMethod method, String path, String body) {
    down.writeInbound(
        new DefaultFullHttpRequest(
            HttpVersion.HTTP_1_1,
            method,
            path,
            Unpooled.copiedBuffer(body, StandardCharsets.UTF_8)));
  }

  private static void advance(EmbeddedChannel down, long millis) {
    down.advanceTimeBy(millis, TimeUnit.MILLISECONDS);
    down.runScheduledPendingTasks();
  }

  /** The status of the response written downstream, 0 if none; everything read is released. */
  private static int status(EmbeddedChannel down) {
    int status = 0;
    Object o;
    while ((o = down.readOutbound()) != null) {
      if (o instanceof HttpResponse r) {
        status = r.status().code();
      }
      ReferenceCountUtil.release(o);
    }
    return status;
  }

  /** What an upstream exchange was sent: the request line and the body, everything released. */
  private static String sent(EmbeddedChannel up) {
    StringBuilder b = new StringBuilder();
    Object o;
    while ((o = up.readOutbound()) != null) {
      if (o instanceof HttpRequest r) {
        b.append(r.method()).append(' ').append(r.uri()).append('|');
      }
      if (o instanceof HttpContent c) {
        b.append(c.content().toString(StandardCharsets.UTF_8));
      }
      ReferenceCountUtil.release(o);
    }
    return b.toString();
  }

  private double counter(String name) {
    Counter c = plane.metrics().registry().find(name).counter();
    return c == null ? 0 : c.count();
  }

  /** 2xx requests over every series (one per endpoint), -1 when no series is registered. */
  private double requests2xx() {
    java.util.Collection<Counter> cs =
        plane
            .metrics()
            .registry()
            .find("nodemesh.http.requests")
            .tag("response_code_class", "2xx")
            .counters();
    return cs.isEmpty() ? -1 : cs.stream().mapToDouble(Counter::count).sum();
  }

  @Test
  void aKeptAliveConnectionRegistersItsMetersAgainAfterThePodsSeriesWereDropped() {
    EmbeddedChannel down = downstream();
    for (int i = 0; i < 2; i++) {
      send(down, HttpMethod.GET, "/timeout", "");
      EmbeddedChannel up = upstreams.connect();
      assertEquals("GET /timeout|", sent(up));
      upstreams.answer(up, 200, "ok");
      assertEquals(200, status(down));
    }
    assertEquals(2.0, requests2xx(), "the meters kept between requests count each");
    plane.metrics().release("default", "client"); // the pod's series are dropped
    assertEquals(-1.0, requests2xx());
    send(down, HttpMethod.GET, "/timeout", "");
    EmbeddedChannel up = upstreams.connect();
    assertEquals("GET /timeout|", sent(up));
    upstreams.answer(up, 200, "ok");
    assertEquals(200, status(down));
    assertEquals(1.0, requests2xx(), "the next request is counted in a scraped series again");
  }

  @Test
  void a503IsRetriedOnTheOtherEndpointAfterTheBackoff() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/retry", "");
    EmbeddedChannel first = upstreams.connect();
    assertEquals("GET /retry|", sent(first));
    upstreams.answer(first, 503, "busy");
    assertEquals(0, status(down), "the 503 is not passed on while a retry is left");
    assertEquals(List.of(false), upstreams.released, "a failed try's upstream is not pooled");
    assertTrue(upstreams.waiting.isEmpty(), "nothing before the backoff");
    advance(down, 10);
    EmbeddedChannel second = upstreams.connect();
    assertNotEquals(upstreams.targets.get(0), upstreams.targets.get(1), "another endpoint");
    assertEquals("GET /retry|", sent(second));
    upstreams.answer(second, 200, "ok");
    assertEquals(200, status(down));
    assertEquals(List.of(false, true), upstreams.released);
    assertEquals(1.0, counter("nodemesh.http.retries"));
    assertTrue(down.isOpen());
  }

  @Test
  void aConnectFailureIsRetriedWithTheBodyReplayed() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.PUT, "/retry", "hello");
    upstreams.refuse();
    advance(down, 10);
    EmbeddedChannel second = upstreams.connect();
    assertEquals("PUT /retry|hello", sent(second));
    upstreams.answer(second, 201, "");
    assertEquals(201, status(down));
  }

  @Test
  void aNonIdempotentRequestIsNotRetried() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.POST, "/retry", "order");
    EmbeddedChannel up = upstreams.connect();
    assertEquals("POST /retry|order", sent(up));
    upstreams.answer(up, 503, "busy");
    assertEquals(503, status(down));
    assertEquals(0.0, counter("nodemesh.http.retries"));
  }

  @Test
  void retriesStopWhenTheAttemptsAreSpent() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/retry", "");
    upstreams.refuse();
    advance(down, 10);
    upstreams.refuse();
    advance(down, 10);
    upstreams.refuse();
    assertEquals(503, status(down), "three tries refused: the last failure is the answer");
    assertTrue(upstreams.waiting.isEmpty());
    assertEquals(2.0, counter("nodemesh.http.retries"));
  }

  @Test
  void aSpentRetryBudgetPassesTheFailureOn() {
    // The policy allows one retry in flight for the Service (0 %, at least 1).
    EmbeddedChannel a = downstream();
    EmbeddedChannel b = downstream();
    send(a, HttpMethod.GET, "/retry", "");
    send(b, HttpMethod.GET, "/retry", "");
    EmbeddedChannel upA = upstreams.connect();
    EmbeddedChannel upB = upstreams.connect();
    upstreams.answer(upA, 503, "busy");
    assertEquals(0, status(a), "a holds the only retry");
    upstreams.answer(upB, 503, "busy");
    assertEquals(503, status(b), "no budget left for b: its 503 goes to the client");
    assertEquals(1.0, counter("nodemesh.http.retry.budget.exhausted"));
    advance(a, 10);
    upstreams.answer(upstreams.connect(), 200, "ok");
    assertEquals(200, status(a));
    // Everything was given back: the next failure may be retried again.
    send(b, HttpMethod.GET, "/retry", "");
    upstreams.answer(upstreams.connect(), 503, "busy");
    assertEquals(0, status(b), "retried this time");
    advance(b, 10);
    upstreams.answer(upstreams.connect(), 200, "ok");
    assertEquals(200, status(b));
  }

  @Test
  void theRequestTimeoutAnswers504AndALateUpstreamGoesBack() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/timeout", "");
    assertEquals(1, upstreams.waiting.size());
    advance(down, 999);
    assertEquals(0, status(down));
    advance(down, 1);
    assertEquals(504, status(down));
    upstreams.connect();
    assertEquals(List.of(true), upstreams.released, "unused, so pooled again");
    assertTrue(upstreams.sinks.isEmpty(), "never bound to the finished exchange");
    assertTrue(down.isOpen());
  }

  @Test
  void aTimedOutTryIsRetriedAndTheLastOneAnswers504() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/slow", "");
    EmbeddedChannel first = upstreams.connect();
    assertEquals("GET /slow|", sent(first));
    advance(down, 99);
    assertEquals(List.of(), upstreams.released);
    advance(down, 1);
    assertEquals(List.of(false), upstreams.released, "the timed-out try's upstream is dropped");
    assertEquals(0, status(down));
    advance(down, 10);
    upstreams.connect();
    advance(down, 100);
    assertEquals(504, status(down));
    assertEquals(1.0, counter("nodemesh.http.retries"));
    assertTrue(down.isOpen());
  }

  @Test
  void aFaultDelaysThenAbortsWithoutAnyUpstream() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/fault", "");
    advance(down, 49);
    assertEquals(0, status(down));
    advance(down, 1);
    assertEquals(418, status(down));
    assertTrue(upstreams.targets.isEmpty(), "an aborted request never reaches an upstream");
  }

  @Test
  void aRedirectIsAnsweredWithoutAnyUpstreamAndTheConnectionGoesOn() {
    EmbeddedChannel down = downstream();
    HttpRequest req =
        new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, "/old/a?b=1");
    req.headers().set("host", "web:80").set("content-length", 0);
    down.writeInbound(req);
    HttpResponse r = down.readOutbound();
    try {
      assertEquals(301, r.status().code());
      assertEquals("http://web/new/a?b=1", r.headers().get("location"));
    } finally {
      ReferenceCountUtil.release(r);
    }
    assertTrue(upstreams.targets.isEmpty(), "a redirect never reaches an upstream");
    send(down, HttpMethod.GET, "/old", "");
    assertEquals(301, status(down));
    assertTrue(down.isOpen());
  }

  @Test
  void aResetAfterTheResponseStartedBreaksTheDownstream() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/retry", "");
    EmbeddedChannel up = upstreams.connect();
    sent(up);
    upstreams
        .sinks
        .get(up)
        .response(up, new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK));
    upstreams.sinks.get(up).closed(up);
    assertEquals(200, status(down));
    assertFalse(down.isOpen(), "the client must see a broken response, not a retry");
    assertTrue(upstreams.waiting.isEmpty());
  }

  @Test
  void aSecondHeadFromTheUpstreamIsDroppedNotRetried() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/retry", "");
    EmbeddedChannel up = upstreams.connect();
    sent(up);
    UpstreamPools.ResponseSink sink = upstreams.sinks.get(up);
    sink.response(up, new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK));
    sink.response(
        up, new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.SERVICE_UNAVAILABLE));
    sink.response(up, LastHttpContent.EMPTY_LAST_CONTENT);
    int heads = 0;
    Object o;
    while ((o = down.readOutbound()) != null) {
      if (o instanceof HttpResponse r) {
        heads++;
        assertEquals(200, r.status().code());
      }
      ReferenceCountUtil.release(o);
    }
    assertEquals(1, heads);
    assertTrue(upstreams.waiting.isEmpty(), "no retry once the response started");
    assertEquals(List.of(true), upstreams.released);
  }

  @Test
  void theStateTableAllowsOnlyForwardMoves() {
    for (Exchange.State s : Exchange.State.values()) {
      assertFalse(s.next(Exchange.State.STARTED), s + " -> STARTED");
      assertFalse(Exchange.State.DONE.next(s), "DONE is final");
      assertEquals(s != Exchange.State.DONE, s.next(Exchange.State.DONE), s + " -> DONE");
    }
    assertTrue(Exchange.State.SENT.next(Exchange.State.BACKING_OFF));
    assertTrue(Exchange.State.BACKING_OFF.next(Exchange.State.CONNECTING));
    assertFalse(
        Exchange.State.RESPONDING.next(Exchange.State.BACKING_OFF), "no retry once started");
    assertFalse(Exchange.State.DELAYED.next(Exchange.State.SENT));
  }

  // ---- bounded memory: the body waits for an upstream with reading stopped ----

  private static void head(EmbeddedChannel down, HttpMethod method, String path) {
    HttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, method, path);
    head.headers().set("transfer-encoding", "chunked");
    down.writeInbound(head);
  }

  private static void part(EmbeddedChannel down, int bytes, boolean last) {
    byte[] b = new byte[bytes];
    java.util.Arrays.fill(b, (byte) 'x');
    down.writeInbound(
        last
            ? new DefaultLastHttpContent(Unpooled.wrappedBuffer(b))
            : new DefaultHttpContent(Unpooled.wrappedBuffer(b)));
  }

  @Test
  void aBodyWaitingForAConnectionStopsReadingPastTheReplayLimitAndResumesWhenSent() {
    EmbeddedChannel down = downstream(); // replay limit 1024
    head(down, HttpMethod.POST, "/retry");
    part(down, 600, false);
    assertTrue(down.config().isAutoRead(), "under the limit: still reading");
    part(down, 600, false);
    assertFalse(down.config().isAutoRead(), "1200 bytes wait for the upstream: reading stops");
    EmbeddedChannel up = upstreams.connect();
    assertEquals("POST /retry|" + "x".repeat(1200), sent(up));
    assertTrue(down.config().isAutoRead(), "the upstream took the body: reading resumes");
    part(down, 10, true);
    assertEquals("x".repeat(10), sent(up));
    upstreams.answer(up, 200, "ok");
    assertEquals(200, status(down));
  }

  @Test
  void aBodyArrivingDuringARetryBackoffIsHeldBoundedAndSentByTheNextTry() {
    EmbeddedChannel down = downstream();
    head(down, HttpMethod.PUT, "/retry");
    part(down, 100, false);
    upstreams.refuse(); // a connect failure: the next try after the backoff
    assertTrue(down.config().isAutoRead());
    part(down, 600, false);
    part(down, 600, false);
    assertFalse(down.config().isAutoRead(), "no upstream during the backoff: reading stops");
    advance(down, 10);
    EmbeddedChannel second = upstreams.connect();
    assertEquals("PUT /retry|" + "x".repeat(1300), sent(second));
    assertTrue(down.config().isAutoRead());
    part(down, 1, true);
    assertEquals("x", sent(second));
    upstreams.answer(second, 201, "");
    assertEquals(201, status(down));
  }

  @Test
  void aClientGoneWhileTheUpstreamHasNotAnsweredClosesTheUpstreamRequest() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.POST, "/retry", "order");
    EmbeddedChannel up = upstreams.connect();
    assertEquals("POST /retry|order", sent(up));
    down.close(); // reset or closed by the client
    assertEquals(List.of(false), upstreams.released, "the upstream request is closed, not pooled");
  }

  @Test
  void aClientGoneWhileConnectingGivesTheLateUpstreamBackUnused() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/retry", "");
    down.close();
    EmbeddedChannel up = upstreams.connect();
    assertEquals("", sent(up), "nothing is sent for a client that is gone");
    assertEquals(List.of(true), upstreams.released, "an unused connection goes back to the pool");
  }

  /** The client's FIN (shutdownOutput) as the in-pod listener's half-closure reports it. */
  private static void fin(EmbeddedChannel down) {
    down.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    down.runPendingTasks();
  }

  private EmbeddedChannel downstream(Duration halfClose) {
    ConnectionTimeouts d = ConnectionTimeouts.DEFAULT;
    plane =
        plane(
            new ConnectionTimeouts(
                d.requestHeader(),
                d.httpIdle(),
                d.tcpIdle(),
                d.tunnelIdle(),
                d.tlsHandshake(),
                halfClose));
    return downstream();
  }

  /** A request sent upstream and its client's FIN: the client side and the upstream exchange. */
  private record HalfClosed(EmbeddedChannel down, EmbeddedChannel up) {}

  private HalfClosed sentThenFin(String path) {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, path, "");
    EmbeddedChannel up = upstreams.connect();
    assertEquals("GET " + path + "|", sent(up));
    fin(down);
    return new HalfClosed(down, up);
  }

  @Test
  void aClientThatOnlyHalfClosesWhileTheUpstreamIsSlowHasItsUpstreamRequestCancelled() {
    EmbeddedChannel down = sentThenFin("/retry").down();
    assertTrue(down.isOpen(), "a half-closing client may still want the answer");
    advance(down, ConnectionTimeouts.DEFAULT.httpHalfClose().toMillis() - 1);
    assertTrue(down.isOpen());
    assertTrue(upstreams.released.isEmpty());
    advance(down, 1);
    assertFalse(down.isOpen(), "no response started within the half-close timeout");
    assertEquals(List.of(false), upstreams.released, "the upstream request is closed, not pooled");
    assertEquals(0, status(down), "nothing is written to a client taken as gone");
    assertEquals(1.0, timeouts(ConnectionTimeouts.HTTP_HALF_CLOSE));
  }

  @Test
  void aHalfClosedClientWhoseResponseStartsInTimeGetsItAndThenTheConnectionCloses() {
    HalfClosed h = sentThenFin("/retry");
    EmbeddedChannel down = h.down();
    EmbeddedChannel up = h.up();
    advance(down, ConnectionTimeouts.DEFAULT.httpHalfClose().toMillis() - 1);
    upstreams.answer(up, 200, "ok");
    assertEquals(200, status(down));
    down.runPendingTasks();
    assertFalse(down.isOpen(), "closed once the requests read before the FIN are answered");
    assertEquals(List.of(true), upstreams.released, "an answered upstream goes back to the pool");
    advance(down, 10_000);
    assertEquals(0.0, timeouts(ConnectionTimeouts.HTTP_HALF_CLOSE));
  }

  @Test
  void aHalfClosedClientWaitingForAConnectionOrABackoffIsTakenAsGoneAtOnceWithZero() {
    // No endpoint ready yet: the acquisition is pending.
    EmbeddedChannel down = downstream(Duration.ZERO);
    send(down, HttpMethod.GET, "/retry", "");
    fin(down);
    assertFalse(down.isOpen(), "0: the FIN ends a request not yet answered");
    EmbeddedChannel late = upstreams.connect();
    assertEquals("", sent(late), "nothing is sent for a client that is gone");
    assertEquals(List.of(true), upstreams.released, "the late connection goes back unused");

    // A retry's backoff: the first try failed, the second waits.
    EmbeddedChannel down2 = downstream();
    send(down2, HttpMethod.GET, "/retry", "");
    upstreams.refuse();
    fin(down2);
    advance(down2, ConnectionTimeouts.DEFAULT.httpHalfClose().toMillis());
    assertFalse(down2.isOpen(), "a backoff or a reconnect does not outlast the timeout");
    assertEquals(0, status(down2));
  }

  @Test
  void aPipelinedRequestReadBeforeTheFinGetsItsOwnTimeoutWhenItsTurnComes() {
    EmbeddedChannel down = downstream();
    send(down, HttpMethod.GET, "/retry", "");
    send(down, HttpMethod.GET, "/retry/2", "");
    EmbeddedChannel first = upstreams.connect();
    fin(down);
    advance(down, 4_000);
    upstreams.answer(first, 200, "one");
    assertEquals(200, status(down));
    assertTrue(down.isOpen(), "the second request is still owed its answer");
    EmbeddedChannel second = upstreams.connect();
    assertEquals("GET /retry/2|", sent(second));
    advance(down, ConnectionTimeouts.DEFAULT.httpHalfClose().toMillis() - 1);
    assertTrue(down.isOpen(), "timed from the second request's start, not from the FIN");
    advance(down, 1);
    assertFalse(down.isOpen());
    assertEquals(List.of(true, false), upstreams.released);
  }

  private double timeouts(String reason) {
    Counter c =
        plane.metrics().registry().find(ConnectionTimeouts.METER).tag("reason", reason).counter();
    return c == null ? 0 : c.count();
  }
}
