package dev.nodemesh.proxy.l7;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.HttpRequestInfo;
import dev.nodemesh.proxy.l7.resilience.Backoff;
import dev.nodemesh.proxy.l7.resilience.CircuitBreaker;
import dev.nodemesh.proxy.l7.resilience.EndpointStats;
import dev.nodemesh.proxy.l7.resilience.OutlierDetector;
import dev.nodemesh.proxy.l7.resilience.RateLimiter;
import dev.nodemesh.proxy.l7.resilience.RingHash;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import dev.nodemesh.proxy.l7.resilience.TrafficState;
import dev.nodemesh.proxy.metrics.HttpMeters;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import dev.nodemesh.proxy.outbound.LoadBalancer;
import dev.nodemesh.proxy.outbound.Route;
import dev.nodemesh.proxy.tunnel.Tunnel;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.util.AsciiString;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Proxies the requests of one downstream HTTP/1.1 connection, or of one HTTP/2 stream (behind
 * {@code Http2StreamFrameToHttpObjectCodec}, so both look the same here), one request at a time:
 * routes it ({@link HttpRouter}), rewrites its head, and streams it to a pooled upstream exchange
 * and the response back. Everything runs on the downstream channel's event loop.
 *
 * <p>Retries (the rule's retry: configured codes, connect failures, a reset before any response)
 * replay the request from a buffer of at most {@link HttpLimits#maxReplayBytes}; a larger body, a
 * response already started, or a non-idempotent method (unless the route allows it) is never
 * retried. {@code timeouts.request} covers every try and gives 504 before a response started;
 * {@code timeouts.backendRequest} bounds one try. Errors: no route 404, bad backend 500, no
 * endpoint or upstream unreachable 503, upstream reset 502, timeout 504, malformed request 400 (414
 * line too long, 431 headers too large), each closing only this connection or stream.
 *
 * <p>Flushes are batched per read: what a downstream read produces for the upstream is flushed at
 * the downstream's read complete (a request head and its end go out in one write), and a response
 * is flushed when it ends or when the upstream read that produced part of it completes. Writes made
 * outside a read (a dial completing, a timer) are flushed at once.
 *
 * <p>HTTP/1.1 pipelining: requests that arrive while one is being answered are queued and reading
 * stops until the answer is complete. Back-pressure: reading a side stops while the other side is
 * not writable.
 */
final class RequestHandler extends ChannelInboundHandlerAdapter
    implements UpstreamPools.ResponseSink {
  private static final Logger log = LoggerFactory.getLogger(RequestHandler.class);
  private static final Set<HttpMethod> IDEMPOTENT =
      Set.of(
          HttpMethod.GET,
          HttpMethod.HEAD,
          HttpMethod.OPTIONS,
          HttpMethod.TRACE,
          HttpMethod.PUT,
          HttpMethod.DELETE);
  // AsciiString names: their hash is computed once, not on every remove.
  private static final List<AsciiString> HOP_BY_HOP =
      List.of(
          AsciiString.cached("connection"),
          AsciiString.cached("keep-alive"),
          AsciiString.cached("proxy-connection"),
          AsciiString.cached("transfer-encoding"),
          AsciiString.cached("upgrade"),
          AsciiString.cached("te"),
          AsciiString.cached("trailer"),
          AsciiString.cached("expect"),
          AsciiString.cached("http2-settings"));

  /** What every request of this connection shares. */
  record Context(
      DataPlane plane,
      EnrolledPod source,
      MeshService service,
      int servicePort,
      InetSocketAddress dialled,
      String clientIp,
      boolean h2Downstream,
      HttpLimits limits) {}

  /** The router's own endpoint pick is replaced by the TrafficPolicy's balancer (see balance). */
  private static final LoadBalancer FIRST = (service, count) -> 0;

  private final Context cx;
  private @Nullable TrafficState traffic; // looked up on the first routed request
  private final ArrayDeque<HttpObject> queued = new ArrayDeque<>();
  private @Nullable ChannelHandlerContext ctx;
  private @Nullable Request current;
  private boolean discarding;
  // Inside a downstream read: upstream flushes wait for channelReadComplete (one write per batch).
  private boolean reading;
  private @Nullable Channel upstreamFlushPending;
  // A response part was written downstream but not flushed (flushed at the upstream read's end).
  private boolean downstreamFlushPending;

  RequestHandler(Context cx) {
    this.cx = cx;
  }

  /**
   * One try's claims on the Service's shared state (breaker counts, the endpoint's requests in
   * flight, a retry-budget slot), given back exactly once by {@link #endTry}.
   */
  private static final class Try {
    final ServiceTraffic st;
    final EndpointStats endpoint;
    final long start = System.nanoTime();
    boolean admitted;
    boolean pending;
    boolean connection;
    boolean retry;
    boolean outcomeRecorded;
    boolean ended;

    Try(ServiceTraffic st, EndpointStats endpoint) {
      this.st = st;
      this.endpoint = endpoint;
    }
  }

  /** One request in flight: its route, body buffer and the current try. */
  private final class Request {
    final long start = System.nanoTime();
    final String requestId;
    HttpRouter.@Nullable Forward forward;
    @Nullable HttpRequest upstreamHead;
    final List<HttpContent> body = new ArrayList<>();
    int bodyBytes;
    int sent;
    boolean keepForReplay;
    boolean requestDone;
    int retriesLeft;
    int tries;
    @Nullable Channel exchange;
    boolean exchangeReady;
    boolean responseStarted;
    int status;
    long responseBytes;
    boolean headRequest;
    @Nullable ScheduledFuture<?> requestTimer;
    @Nullable ScheduledFuture<?> tryTimer;
    @Nullable ScheduledFuture<?> retryTimer;
    @Nullable HttpMeters meters;
    @Nullable ConnectionLog accessLog;
    String method = "";
    String path = "";
    // TrafficPolicy state: the backend Service's, the current try, why the proxy answered itself.
    @Nullable ServiceTraffic traffic;
    @Nullable Try attempt;
    @Nullable Workload client;
    long hash;
    boolean budgetCounted;
    boolean retryReserved;
    @Nullable ResponseFlag flag;
    long retryAfterSeconds;

    /** False once the upstream's response head said the connection ends after it. */
    boolean upstreamKeepAlive = true;

    /** gRPC status seen in the response (or answered by the proxy); -1 when none. */
    int grpcStatus = -1;

    /** A gRPC client's request: the proxy's own answers are gRPC statuses (GrpcStatuses). */
    boolean grpc;

    /**
     * The HTTP status the proxy answered with itself, also when it went to a gRPC client as a
     * grpc-status in an HTTP 200 (so the access log flag still says why); 0 when none.
     */
    int localStatus;

    boolean delayed;
    @Nullable RequestMirror mirror;

    Request(String requestId) {
      this.requestId = requestId;
    }
  }

  @Override
  public void handlerAdded(ChannelHandlerContext c) {
    this.ctx = c;
  }

  @Override
  public void channelRead(ChannelHandlerContext c, Object msg) {
    if (!(msg instanceof HttpObject o)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    reading = true;
    Request r = current;
    if ((r != null && r.requestDone) || !queued.isEmpty()) {
      queued.add(o);
      c.channel().config().setAutoRead(false);
      return;
    }
    handle(o);
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext c) {
    reading = false;
    Channel ex = upstreamFlushPending;
    if (ex != null) {
      upstreamFlushPending = null;
      ex.flush();
    }
    c.fireChannelReadComplete();
  }

  /** Flushes {@code ex} now, or at the end of the downstream read in progress. */
  private void flushUpstream(Channel ex) {
    if (reading) {
      Channel pending = upstreamFlushPending;
      if (pending != null && pending != ex) {
        pending.flush();
      }
      upstreamFlushPending = ex;
    } else {
      ex.flush();
    }
  }

  private void handle(HttpObject msg) {
    if (msg instanceof HttpRequest head) {
      if (current != null) {
        // A new head before the last body part: only a broken decoder does that.
        ReferenceCountUtil.release(msg);
        closeDownstream();
        return;
      }
      onHead(head);
      if (msg instanceof FullHttpMessage full) {
        onContent(new DefaultLastHttpContent(full.content().retain(), full.trailingHeaders()));
        full.release();
      }
      return;
    }
    if (msg instanceof HttpContent content) {
      onContent(content);
      return;
    }
    ReferenceCountUtil.release(msg);
  }

  private void onHead(HttpRequest head) {
    DecoderResult decoded = head.decoderResult();
    String id = head.headers().get("x-request-id");
    Request r = new Request(id != null ? id : requestId(ThreadLocalRandom.current()));
    current = r;
    r.headRequest = HttpMethod.HEAD.equals(head.method());
    r.method = head.method().name();
    String uri = head.uri();
    int query = uri.indexOf('?');
    r.path = query < 0 ? uri : uri.substring(0, query); // the query may carry secrets: not logged
    r.grpc = GrpcStatuses.isGrpc(head.headers());
    if (decoded.isFailure()) {
      r.accessLog = cx.plane().accessLog().begin(labels(null));
      Throwable cause = decoded.cause();
      HttpResponseStatus status =
          cause instanceof TooLongHttpHeaderException
              ? HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
              : cause instanceof TooLongHttpLineException
                  ? HttpResponseStatus.REQUEST_URI_TOO_LONG
                  : cause instanceof TooLongFrameException
                      ? HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                      : HttpResponseStatus.BAD_REQUEST;
      log.debug("malformed request from {}: {}", cx.source(), String.valueOf(cause));
      r.requestDone = true; // nothing more can be read reliably from this connection
      fail(status, "malformed request", true);
      return;
    }
    ConfigSnapshot snapshot = cx.plane().snapshots().current();
    HttpRouter.Decision d =
        HttpRouter.route(
            snapshot,
            cx.service(),
            cx.servicePort(),
            cx.dialled().getAddress(),
            head.method().name(),
            head.uri(),
            head.headers(),
            FIRST,
            bound -> ThreadLocalRandom.current().nextInt(bound));
    if (d instanceof HttpRouter.Forward routed0) {
      MeshService backend = routed0.target().service();
      TrafficState ts = traffic;
      if (ts == null) {
        ts = TrafficState.of(cx.plane().metrics().registry());
        traffic = ts;
      }
      ServiceTraffic st = ts.service(backend.id(), snapshot.trafficPolicy(backend.id()));
      r.traffic = st;
      r.client = clientWorkload(snapshot);
      r.hash = requestHash(st.policy(), head.headers());
      HttpRouter.Forward f = balance(snapshot, routed0, r, null);
      r.forward = f;
      TrafficLabels routed = labels(f);
      r.meters = cx.plane().metrics().http(routed);
      r.accessLog = cx.plane().accessLog().begin(routed);
      HttpRoute.Rule rule = f.entry().rule();
      HttpRoute.Retry retry = rule.retry();
      if (rateLimited(r, st)) {
        return;
      }
      st.budget().requestStarted();
      r.budgetCounted = true;
      boolean methodOk =
          IDEMPOTENT.contains(head.method())
              || f.entry().route().retryNonIdempotent()
              || st.policy().retry().retryNonIdempotent();
      r.retriesLeft = retry != null && methodOk ? retry.attempts() : 0;
      r.keepForReplay = r.retriesLeft > 0;
      r.upstreamHead = upstreamHead(head, f, r);
      if (!authorized(r, f, head, snapshot)) {
        return;
      }
      HttpFault fault = null;
      NamespacedName faultRef = rule.fault();
      if (faultRef != null) {
        fault = snapshot.httpFault(faultRef);
        if (fault == null) {
          // Gateway API: a filter that cannot be resolved makes the rule answer 500.
          r.flag = ResponseFlag.NR;
          fail(
              HttpResponseStatus.INTERNAL_SERVER_ERROR,
              "HTTPFault " + faultRef + " not found",
              false);
          return;
        }
      }
      if (rule.requestTimeout() != null) {
        r.requestTimer =
            ctx()
                .executor()
                .schedule(() -> timedOut(r), rule.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
      }
      HttpFault.Abort abort = fault == null ? null : fault.abort();
      boolean aborting = abort != null && Faults.roll(abort.perMillion());
      HttpFault.Delay delay = fault == null ? null : fault.delay();
      if (!aborting && rule.mirror() != null) {
        r.mirror =
            RequestMirror.start(cx, ctx().channel(), snapshot, rule.mirror(), r.upstreamHead);
      }
      Runnable next = abort != null && aborting ? () -> injectAbort(r, abort) : () -> startTry(r);
      if (delay != null && Faults.roll(delay.perMillion())) {
        r.delayed = true;
        r.retryTimer =
            ctx().executor().schedule(next, delay.fixed().toNanos(), TimeUnit.NANOSECONDS);
      } else {
        next.run();
      }
      return;
    }
    TrafficLabels unrouted = labels(null);
    r.meters = cx.plane().metrics().http(unrouted);
    r.accessLog = cx.plane().accessLog().begin(unrouted);
    if (d instanceof HttpRouter.NoMatch) {
      fail(HttpResponseStatus.NOT_FOUND, "no route matches", false);
    } else if (d instanceof HttpRouter.BadBackend b) {
      log.debug("route {}: {}", b.entry().route().id(), b.reason());
      fail(HttpResponseStatus.INTERNAL_SERVER_ERROR, b.reason(), false);
    } else {
      fail(HttpResponseStatus.SERVICE_UNAVAILABLE, "no healthy upstream", false);
    }
  }

  /** The calling pod's workload (its node and zone, for locality), or null if not in config. */
  private @Nullable Workload clientWorkload(ConfigSnapshot snapshot) {
    List<InetAddress> ips = cx.source().ips();
    return ips.isEmpty() ? null : snapshot.workloadByIp(ips.get(0));
  }

  /** RING_HASH's key: the configured header when present, else the client's IP. */
  private long requestHash(TrafficPolicy policy, HttpHeaders headers) {
    TrafficPolicy.LoadBalancer lb = policy.loadBalancer();
    if (lb.algorithm() != TrafficPolicy.Algorithm.RING_HASH) {
      return 0;
    }
    String header = lb.hashHeader();
    String value = header == null ? null : headers.get(header);
    return RingHash.hash(value != null ? "h:" + value : "ip:" + cx.clientIp());
  }

  /**
   * {@code f} with its endpoint chosen by the Service's balancer (instead of the router's), among
   * the endpoints reachable on the dialled VIP's family; {@code exclude} is the key of the endpoint
   * a failed try went to.
   */
  private HttpRouter.Forward balance(
      ConfigSnapshot snapshot, HttpRouter.Forward f, Request r, @Nullable String exclude) {
    ServiceTraffic st = r.traffic;
    if (st == null) {
      return f;
    }
    Route.ToService t = f.target();
    InetAddress vip = cx.dialled().getAddress();
    List<Workload> endpoints = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    List<InetSocketAddress> addresses = new ArrayList<>();
    for (Workload w : snapshot.endpoints(t.service())) {
      InetAddress ip = w.ipLike(vip);
      int port = t.port().targetPortOn(w);
      if (ip != null && port != 0) {
        InetSocketAddress a = new InetSocketAddress(ip, port);
        endpoints.add(w);
        addresses.add(a);
        keys.add(key(a));
      }
    }
    if (endpoints.isEmpty()) {
      return f;
    }
    int i = st.choose(endpoints, keys, r.client, r.hash, exclude, ThreadLocalRandom.current());
    return new HttpRouter.Forward(
        f.entry(), new Route.ToService(t.service(), t.port(), endpoints.get(i), addresses.get(i)));
  }

  private static String key(InetSocketAddress a) {
    return a.getAddress().getHostAddress() + ":" + a.getPort();
  }

  /** Takes a token from the Service's rate limit, or answers 429 (flag RL) and returns true. */
  private boolean rateLimited(Request r, ServiceTraffic st) {
    RateLimiter limiter = st.rateLimiter();
    if (limiter == null) {
      return false;
    }
    long wait = limiter.acquire(sourceIdentity(r));
    if (wait == 0) {
      return false;
    }
    st.meters().rateLimited().increment();
    r.flag = ResponseFlag.RL;
    r.retryAfterSeconds = Math.max(1, (wait + 999_999_999L) / 1_000_000_000L);
    fail(HttpResponseStatus.TOO_MANY_REQUESTS, "rate limited", false);
    return true;
  }

  /** The caller's identity for per-source limits: its SPIFFE ID, else namespace/pod. */
  private String sourceIdentity(Request r) {
    Workload w = r.client;
    if (w != null) {
      return "spiffe://"
          + cx.plane().trustDomain()
          + "/ns/"
          + w.namespace()
          + "/sa/"
          + w.serviceAccount();
    }
    return cx.source().namespace() + "/" + cx.source().name();
  }

  /** Reserves a retry in the Service's budget; false (counted) when the budget is spent. */
  private boolean takeRetry(Request r) {
    ServiceTraffic st = r.traffic;
    if (st == null || r.retryReserved) {
      return true;
    }
    if (!st.budget().tryStartRetry()) {
      st.meters().budget().increment();
      return false;
    }
    r.retryReserved = true;
    return true;
  }

  /** Records what the endpoint did with this try, once (outlier detection, latency). */
  private static void outcome(@Nullable Try t, OutlierDetector.Outcome o, boolean answered) {
    if (t == null || t.outcomeRecorded) {
      return;
    }
    t.outcomeRecorded = true;
    if (answered) {
      t.endpoint.observe(System.nanoTime() - t.start, System.nanoTime());
    }
    t.st.record(t.endpoint, o);
  }

  /** Gives back everything the try holds; idempotent. */
  private static void endTry(@Nullable Try t) {
    if (t == null || t.ended) {
      return;
    }
    t.ended = true;
    CircuitBreaker cb = t.st.breaker();
    if (cb != null) {
      if (t.pending) {
        cb.pendingEnded();
      }
      if (t.connection) {
        cb.connectionReleased();
      }
      if (t.admitted) {
        cb.requestEnded();
      }
    }
    if (t.retry) {
      t.st.budget().retryEnded();
    }
    t.endpoint.ended();
  }

  private TrafficLabels labels(HttpRouter.@Nullable Forward f) {
    EnrolledPod s = cx.source();
    if (f == null) {
      return new TrafficLabels(
          "source",
          s.name(),
          s.namespace(),
          TrafficLabels.UNKNOWN,
          cx.service().namespace(),
          cx.service().name() + "." + cx.service().namespace(),
          cx.plane().principalLabel(cx.plane().snapshots().current(), s),
          TrafficLabels.UNKNOWN);
    }
    MeshService b = f.target().service();
    return new TrafficLabels(
        "source",
        s.name(),
        s.namespace(),
        f.target().endpoint().name(),
        b.namespace(),
        b.name() + "." + b.namespace(),
        cx.plane().principalLabel(cx.plane().snapshots().current(), s),
        cx.plane().principalLabel(f.target().endpoint()));
  }

  /** The head sent upstream: rewritten, hop-by-hop headers dropped, mesh headers added. */
  private HttpRequest upstreamHead(HttpRequest head, HttpRouter.Forward f, Request r) {
    HttpHeaders h = head.headers().copy();
    boolean chunked = HttpUtil.isTransferEncodingChunked(head);
    boolean keepTeTrailers = h2Upstream(f) && "trailers".equalsIgnoreCase(h.get("te"));
    stripHopByHop(h);
    if (keepTeTrailers) {
      h.set("te", "trailers");
    }
    h.set("x-request-id", r.requestId);
    if (!h.contains("traceparent")) {
      h.set("traceparent", traceparent(ThreadLocalRandom.current()));
    }
    String xff = h.get("x-forwarded-for");
    h.set("x-forwarded-for", xff == null ? cx.clientIp() : xff + ", " + cx.clientIp());
    if (!h.contains("x-forwarded-proto")) {
      h.set("x-forwarded-proto", "http");
    }
    applyModifier(h, f.entry().rule().requestHeaders());
    String host = HttpRouter.rewriteHost(f.entry());
    if (host != null) {
      h.set(HttpHeaderNames.HOST, host);
    }
    if (!h.contains(HttpHeaderNames.HOST)) {
      h.set(HttpHeaderNames.HOST, cx.service().name());
    }
    if (!h.contains(HttpHeaderNames.CONTENT_LENGTH)
        && (chunked || (cx.h2Downstream() && !(head instanceof FullHttpMessage)))) {
      h.set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED);
    }
    String uri = HttpRouter.rewritePath(f.entry(), head.uri());
    return new DefaultHttpRequest(HttpVersion.HTTP_1_1, head.method(), uri, h);
  }

  private static final char[] HEX = "0123456789abcdef".toCharArray();

  /**
   * A random (version 4) UUID for {@code x-request-id}. {@link java.util.UUID#randomUUID} draws
   * from a shared SecureRandom on the event loop; an ID for correlating log lines needs uniqueness,
   * not unpredictability, so a thread-local generator does.
   */
  static String requestId(java.util.Random rnd) {
    long hi = (rnd.nextLong() & ~0xf000L) | 0x4000L; // version 4
    long lo = (rnd.nextLong() & 0x3fffffffffffffffL) | 0x8000000000000000L; // IETF variant
    char[] c = new char[36];
    hex(hi >>> 32, 8, c, 0);
    c[8] = '-';
    hex(hi >>> 16, 4, c, 9);
    c[13] = '-';
    hex(hi, 4, c, 14);
    c[18] = '-';
    hex(lo >>> 48, 4, c, 19);
    c[23] = '-';
    hex(lo, 12, c, 24);
    return new String(c);
  }

  /** A W3C {@code traceparent} starting a sampled trace: random non-zero trace and span IDs. */
  static String traceparent(java.util.Random rnd) {
    char[] c = new char[55];
    c[0] = '0';
    c[1] = '0';
    c[2] = '-';
    hex(rnd.nextLong(), 16, c, 3);
    hex(rnd.nextLong() | 1, 16, c, 19);
    c[35] = '-';
    hex(rnd.nextLong() | 1, 16, c, 36);
    c[52] = '-';
    c[53] = '0';
    c[54] = '1';
    return new String(c);
  }

  /** The low {@code digits} hex digits of {@code v}, lowercase, into {@code c} at {@code at}. */
  private static void hex(long v, int digits, char[] c, int at) {
    for (int i = digits - 1; i >= 0; i--) {
      c[at + i] = HEX[(int) (v & 0xf)];
      v >>>= 4;
    }
  }

  private static boolean h2Upstream(HttpRouter.Forward f) {
    return HttpProxy.isH2(f.target().port().appProtocol());
  }

  private static void stripHopByHop(HttpHeaders h) {
    String connection = h.get(HttpHeaderNames.CONNECTION);
    if (connection != null) {
      for (String token : connection.split(",")) {
        h.remove(token.trim());
      }
    }
    for (AsciiString name : HOP_BY_HOP) {
      h.remove(name);
    }
    List<String> ext = new ArrayList<>();
    for (Map.Entry<String, String> e : h) {
      if (e.getKey().regionMatches(true, 0, "x-http2-", 0, 8)) {
        ext.add(e.getKey());
      }
    }
    ext.forEach(h::remove);
  }

  private static void applyModifier(HttpHeaders h, HttpRoute.HeaderModifier m) {
    if (m.isEmpty()) {
      return;
    }
    m.set().forEach(h::set);
    m.add().forEach(h::add);
    m.remove().forEach(h::remove);
  }

  private void onContent(HttpContent content) {
    Request r = current;
    if (r == null || discarding || r.forward == null) {
      // The request was answered locally already: the rest of its body is read and dropped.
      if (content instanceof LastHttpContent) {
        discarding = false;
      }
      content.release();
      return;
    }
    if (content instanceof LastHttpContent) {
      r.requestDone = true;
    }
    RequestMirror mirror = r.mirror;
    if (mirror != null) {
      mirror.content(content, cx.limits().maxReplayBytes());
    }
    r.body.add(content);
    r.bodyBytes += content.content().readableBytes();
    if (r.keepForReplay && r.bodyBytes > cx.limits().maxReplayBytes()) {
      r.keepForReplay = false;
    }
    flushBody(r);
  }

  private void flushBody(Request r) {
    Channel ex = r.exchange;
    if (ex == null || !r.exchangeReady) {
      return;
    }
    boolean wrote = false;
    while (r.sent < r.body.size()) {
      HttpContent c = r.body.get(r.sent);
      if (r.keepForReplay) {
        ex.write(c.retainedDuplicate());
        r.sent++;
      } else {
        ex.write(c);
        r.body.remove(r.sent);
      }
      wrote = true;
    }
    if (!r.keepForReplay && r.tries > 0) {
      // The replay buffer is gone: this try is the last one.
      r.retriesLeft = 0;
    }
    if (wrote) {
      flushUpstream(ex);
      if (!ex.isWritable()) {
        ctx().channel().config().setAutoRead(false);
      }
    }
  }

  private void startTry(Request r) {
    HttpRouter.Forward f = r.forward;
    if (f == null || current != r) {
      return;
    }
    r.tries++;
    r.sent = 0;
    r.exchangeReady = false;
    ServiceTraffic st = r.traffic;
    Try t = null;
    if (st != null) {
      if (r.tries > 1) {
        // A retry goes to another endpoint when there is one (the last one just failed).
        f = balance(cx.plane().snapshots().current(), f, r, key(f.target().upstream()));
        r.forward = f;
      }
      CircuitBreaker cb = st.breaker();
      if (cb != null && !cb.tryAdmit()) {
        st.meters().overflows().increment();
        r.flag = ResponseFlag.UO;
        r.retriesLeft = 0;
        if (r.retryReserved) {
          r.retryReserved = false;
          st.budget().retryEnded();
        }
        fail(HttpResponseStatus.SERVICE_UNAVAILABLE, "upstream overflow", false);
        return;
      }
      t = new Try(st, st.stats(key(f.target().upstream())));
      t.admitted = cb != null;
      t.pending = cb != null;
      t.retry = r.retryReserved;
      r.retryReserved = false;
      t.endpoint.started();
      r.attempt = t;
    }
    final Try thisTry = t;
    final HttpRouter.Forward tried = f;
    InetSocketAddress to = f.target().upstream();
    var local = cx.plane().pods().byIp(to.getAddress());
    NetworkNamespace from = local != null ? local.netns() : cx.source().netns();
    // Cross-node endpoints through the source workload's HBONE tunnel, as on the L4 path.
    Tunnel tunnel = cx.plane().tunnel();
    UpstreamPools.Via via =
        tunnel != null && tunnel.crossesNodes(f.target().endpoint(), local != null)
            ? new UpstreamPools.Via(cx.source(), f.target().endpoint())
            : null;
    Future<Channel> acquired =
        UpstreamPools.acquire(
            cx.plane(),
            ctx().channel(),
            from,
            to,
            h2Upstream(f),
            via,
            cx.limits().upstreamIdleTimeout());
    HttpRoute.Rule rule = f.entry().rule();
    if (rule.backendTimeout() != null) {
      r.tryTimer =
          ctx()
              .executor()
              .schedule(
                  () -> tryTimedOut(r), rule.backendTimeout().toNanos(), TimeUnit.NANOSECONDS);
    }
    acquired.addListener(
        fut -> {
          if (thisTry != null && thisTry.pending && !thisTry.ended) {
            thisTry.pending = false;
            CircuitBreaker cb = thisTry.st.breaker();
            if (cb != null) {
              cb.pendingEnded();
            }
          }
          if (current != r || r.status != 0 && !r.responseStarted) {
            if (fut.isSuccess()) {
              UpstreamPools.release((Channel) fut.getNow(), true);
            }
            return;
          }
          if (!fut.isSuccess()) {
            log.debug("upstream {} failed: {}", to, String.valueOf(fut.cause()));
            outcome(thisTry, OutlierDetector.Outcome.CONNECT_FAILURE, false);
            tryFailed(r, HttpResponseStatus.SERVICE_UNAVAILABLE, "upstream connect failed");
            return;
          }
          Channel ex = (Channel) fut.getNow();
          r.exchange = ex;
          if (thisTry != null && !thisTry.ended && !h2Upstream(tried)) {
            CircuitBreaker cb = thisTry.st.breaker();
            if (cb != null) {
              cb.connectionTaken();
              thisTry.connection = true;
            }
          }
          UpstreamPools.bind(ex, this);
          HttpRequest head = r.upstreamHead;
          if (head == null) {
            return;
          }
          // A try that may be followed by another sends a copy (a retry sends the head again);
          // the last possible try sends the head itself.
          ex.write(
              r.retriesLeft > 0
                  ? new DefaultHttpRequest(
                      head.protocolVersion(), head.method(), head.uri(), head.headers().copy())
                  : head);
          r.exchangeReady = true;
          flushBody(r);
          flushUpstream(ex);
        });
  }

  /**
   * The destination's L7 authorization, checked here for an endpoint enrolled on this node whose
   * policies have L7 rules (the L4 check at connection time covers the others; a pod on another
   * node is checked by its own node). A denial answers 403 with flag DENY and the policy in the
   * access log, and counts {@code nodemesh_policy_denials_total}.
   */
  private boolean authorized(
      Request r, HttpRouter.Forward f, HttpRequest head, ConfigSnapshot snapshot) {
    InetSocketAddress to = f.target().upstream();
    Workload dst = f.target().endpoint();
    if (cx.plane().pods().byIp(to.getAddress()) == null || !snapshot.needsL7Authorization(dst)) {
      return true;
    }
    ConnectionSource caller =
        new ConnectionSource(
            SpiffeId.ofEnrolledPod(snapshot, cx.source(), cx.plane().trustDomain()),
            sourceIpLike(to.getAddress()),
            true);
    HttpHeaders headers = head.headers();
    Decision d =
        cx.plane()
            .authorizer()
            .check(
                snapshot,
                dst,
                to.getPort(),
                caller,
                new HttpRequestInfo(r.method, r.path, headers::get));
    ConnectionLog line = r.accessLog;
    if (line != null) {
      line.authz(d.allowed() ? "allow" : "deny", d.policy());
      if (caller.principal() != null) {
        line.sourcePrincipal(caller.principal().toString());
      }
    }
    if (d.allowed()) {
      return true;
    }
    cx.plane()
        .metrics()
        .policyDenials(
            "source",
            TrafficLabels.principal(caller.principal()),
            dst.name(),
            dst.namespace(),
            d.reason())
        .increment();
    log.debug("denied {} {} to {} by {} ({})", r.method, r.path, dst.id(), d.policy(), d.reason());
    r.flag = ResponseFlag.DENY;
    fail(HttpResponseStatus.FORBIDDEN, "RBAC: access denied", false);
    return false;
  }

  private java.net.InetAddress sourceIpLike(java.net.InetAddress destination) {
    for (java.net.InetAddress ip : cx.source().ips()) {
      if ((ip instanceof java.net.Inet4Address) == (destination instanceof java.net.Inet4Address)) {
        return ip;
      }
    }
    return destination;
  }

  /** An injected abort: the configured HTTP status, or a gRPC trailers-only answer. */
  private void injectAbort(Request r, HttpFault.Abort abort) {
    if (current != r) {
      return;
    }
    r.flag = ResponseFlag.FI;
    Integer grpc = abort.grpcStatus();
    if (grpc != null) {
      failGrpc(grpc, "fault injected");
    } else {
      fail(HttpResponseStatus.valueOf(abort.httpStatus()), "fault injected", false);
    }
  }

  /** A try failed before any response byte reached the client: retry or answer. */
  private void tryFailed(Request r, HttpResponseStatus status, String why) {
    cancel(r.tryTimer);
    abandonExchange(r);
    if (r.retriesLeft > 0 && (r.keepForReplay || r.sent == 0 && r.body.isEmpty()) && takeRetry(r)) {
      r.retriesLeft--;
      HttpRoute.Retry retry = r.forward == null ? null : r.forward.entry().rule().retry();
      ServiceTraffic st = r.traffic;
      TrafficPolicy.Retry policy = st == null ? TrafficPolicy.Retry.DEFAULT : st.policy().retry();
      // Exponential with full jitter; the route's backoff, when set, is the base.
      long base =
          retry != null && !retry.backoff().isZero()
              ? retry.backoff().toNanos()
              : policy.backoffBase().toNanos();
      long max = Math.max(base, policy.backoffMax().toNanos());
      long backoff = Backoff.delayNanos(base, max, r.tries - 1, ThreadLocalRandom.current());
      if (st != null) {
        st.meters().retries().increment();
      }
      r.retryTimer = ctx().executor().schedule(() -> startTry(r), backoff, TimeUnit.NANOSECONDS);
      return;
    }
    fail(status, why, false);
  }

  private void abandonExchange(Request r) {
    endTry(r.attempt);
    Channel ex = r.exchange;
    r.exchange = null;
    r.exchangeReady = false;
    if (ex != null) {
      UpstreamPools.release(ex, false);
    }
  }

  private void tryTimedOut(Request r) {
    if (current != r || r.responseStarted) {
      if (current == r) {
        abortStarted(r);
      }
      return;
    }
    outcome(r.attempt, OutlierDetector.Outcome.GATEWAY_ERROR, false);
    tryFailed(r, HttpResponseStatus.GATEWAY_TIMEOUT, "upstream timed out");
  }

  private void timedOut(Request r) {
    if (current != r) {
      return;
    }
    if (r.responseStarted) {
      abortStarted(r);
      return;
    }
    cancel(r.retryTimer);
    cancel(r.tryTimer);
    abandonExchange(r);
    r.retriesLeft = 0;
    fail(HttpResponseStatus.GATEWAY_TIMEOUT, "request timed out", false);
  }

  /** The response began but cannot complete: the client must see a broken response. */
  private void abortStarted(Request r) {
    abandonExchange(r);
    r.status = r.status == 0 ? 502 : r.status;
    finish(r, false);
    closeDownstream();
  }

  // ---- the upstream side (ResponseSink), on the same event loop ----

  @Override
  public void response(Channel exchange, HttpObject msg) {
    Request r = current;
    if (r == null || exchange != r.exchange) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof HttpResponse head) {
      int code = head.status().code();
      if (code >= 100 && code < 200 && code != 101) {
        ReferenceCountUtil.release(msg); // interim responses (100 Continue) stay between us
        return;
      }
      // A gRPC failure is an HTTP 200 whose only HEADERS carry grpc-status (trailers-only): it
      // counts as the HTTP status that grpc-status stands for, so retry codes and outlier
      // detection see it (a status in real trailers comes after the response started: too late).
      boolean trailersOnly =
          msg instanceof FullHttpMessage whole
              && !whole.content().isReadable()
              && whole.trailingHeaders().isEmpty();
      int effective = GrpcStatuses.effectiveStatus(code, head.headers(), trailersOnly);
      outcome(
          r.attempt,
          effective == 502 || effective == 503 || effective == 504
              ? OutlierDetector.Outcome.GATEWAY_ERROR
              : effective >= 500
                  ? OutlierDetector.Outcome.SERVER_ERROR
                  : OutlierDetector.Outcome.SUCCESS,
          true);
      HttpRoute.Retry retry = r.forward == null ? null : r.forward.entry().rule().retry();
      if (retry != null
          && retry.codes().contains(effective)
          && r.retriesLeft > 0
          && r.keepForReplay
          && takeRetry(r)) {
        ReferenceCountUtil.release(msg);
        tryFailed(r, HttpResponseStatus.valueOf(effective), "retrying");
        return;
      }
      r.responseStarted = true;
      r.status = code;
      // A server that says it closes (Connection: close, or HTTP/1.0 without keep-alive) has its
      // connection closed here too, never pooled for the next request.
      r.upstreamKeepAlive = HttpUtil.isKeepAlive(head);
      grpcStatus(r, head.headers());
      HttpResponse down = downstreamHead(head, r);
      if (msg instanceof FullHttpMessage full
          && cx.h2Downstream()
          && !full.content().isReadable()
          && full.trailingHeaders().isEmpty()) {
        // gRPC's trailers-only answer: one HEADERS frame that ends the stream, kept as one.
        full.release();
        Channel ex = r.exchange;
        r.exchange = null;
        writeDownstream(
            r,
            new DefaultFullHttpResponse(
                HttpVersion.HTTP_1_1,
                down.status(),
                Unpooled.EMPTY_BUFFER,
                down.headers(),
                new io.netty.handler.codec.http.DefaultHttpHeaders()));
        if (ex != null) {
          UpstreamPools.release(ex, r.requestDone && r.upstreamKeepAlive);
        }
        finish(r, true);
        return;
      }
      if (msg instanceof HttpContent c) {
        ctx().write(down);
        forwardContent(r, c);
      } else {
        writeDownstream(r, down);
      }
      return;
    }
    if (msg instanceof HttpContent c && r.responseStarted) {
      forwardContent(r, c);
      return;
    }
    ReferenceCountUtil.release(msg);
  }

  private HttpResponse downstreamHead(HttpResponse head, Request r) {
    HttpHeaders h = head.headers().copy();
    boolean chunked = HttpUtil.isTransferEncodingChunked(head);
    stripHopByHop(h);
    if (r.forward != null) {
      applyModifier(h, r.forward.entry().rule().responseHeaders());
    }
    int code = head.status().code();
    boolean bodyless = r.headRequest || code == 204 || code == 304;
    if (!cx.h2Downstream() && !bodyless && !h.contains(HttpHeaderNames.CONTENT_LENGTH)) {
      if (head instanceof FullHttpMessage full && !chunked) {
        h.setInt(HttpHeaderNames.CONTENT_LENGTH, full.content().readableBytes());
      } else {
        h.set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED);
      }
    }
    return new DefaultHttpResponse(HttpVersion.HTTP_1_1, head.status(), h);
  }

  private static void grpcStatus(Request r, HttpHeaders h) {
    String g = h.get("grpc-status");
    if (g != null) {
      try {
        r.grpcStatus = Integer.parseInt(g.trim());
      } catch (NumberFormatException e) {
        r.grpcStatus = 2; // UNKNOWN, as a gRPC client reads a bad status
      }
    }
  }

  private void forwardContent(Request r, HttpContent c) {
    boolean last = c instanceof LastHttpContent;
    r.responseBytes += c.content().readableBytes();
    if (last) {
      grpcStatus(r, ((LastHttpContent) c).trailingHeaders());
    }
    HttpContent out =
        last
            ? new DefaultLastHttpContent(
                c.content().retain(), ((LastHttpContent) c).trailingHeaders())
            : c.retain();
    c.release();
    writeDownstream(r, out);
    if (last) {
      endTry(r.attempt);
      Channel ex = r.exchange;
      r.exchange = null;
      // Reusable only when the request was sent whole: otherwise the connection is mid-message.
      if (ex != null) {
        UpstreamPools.release(ex, r.requestDone && r.upstreamKeepAlive);
      }
      finish(r, true);
    }
  }

  /**
   * Writes a response part; the end of a response is flushed at once, anything before it when the
   * upstream read that produced it completes ({@link #readComplete}).
   */
  private void writeDownstream(Request r, Object msg) {
    if (msg instanceof LastHttpContent || msg instanceof FullHttpResponse) {
      downstreamFlushPending = false;
      ctx().writeAndFlush(msg);
    } else {
      downstreamFlushPending = true;
      ctx().write(msg);
    }
    Channel ex = r.exchange;
    if (ex != null && !ctx().channel().isWritable()) {
      ex.config().setAutoRead(false);
    }
  }

  @Override
  public void closed(Channel exchange) {
    Request r = current;
    if (r == null || exchange != r.exchange) {
      return;
    }
    r.exchange = null;
    if (!r.responseStarted) {
      outcome(r.attempt, OutlierDetector.Outcome.CONNECT_FAILURE, false);
      tryFailed(r, HttpResponseStatus.BAD_GATEWAY, "upstream reset");
    } else {
      abortStarted(r);
    }
  }

  @Override
  public void readComplete(Channel exchange) {
    if (downstreamFlushPending) {
      downstreamFlushPending = false;
      ctx().flush();
    }
  }

  @Override
  public void writable(Channel exchange, boolean writable) {
    if (writable && current != null && exchange == current.exchange) {
      ctx().channel().config().setAutoRead(true);
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext c) {
    Request r = current;
    if (r != null && r.exchange != null && c.channel().isWritable()) {
      r.exchange.config().setAutoRead(true);
    }
    c.fireChannelWritabilityChanged();
  }

  // ---- answers and the end of a request ----

  /**
   * Answers the current request locally (no response started); closes HTTP/1.1 if asked to. A gRPC
   * request (not a malformed one) gets the gRPC status for {@code status} instead, trailers-only.
   */
  private void fail(HttpResponseStatus status, String why, boolean close) {
    Request r = current;
    if (r == null) {
      return;
    }
    r.localStatus = status.code();
    if (r.grpc && !close) {
      failGrpc(GrpcStatuses.forLocalAnswer(status.code(), r.flag), why);
      return;
    }
    cancel(r.tryTimer);
    cancel(r.retryTimer);
    r.status = status.code();
    byte[] body = (status.code() + " " + why + "\n").getBytes(StandardCharsets.UTF_8);
    FullHttpResponse resp =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1,
            status,
            r.headRequest ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
    resp.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8")
        .setInt(HttpHeaderNames.CONTENT_LENGTH, body.length)
        .set("x-request-id", r.requestId);
    if (r.retryAfterSeconds > 0) {
      resp.headers().set(HttpHeaderNames.RETRY_AFTER, r.retryAfterSeconds);
    }
    if (close && !cx.h2Downstream()) {
      resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      ctx().writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
      finish(r, false);
      return;
    }
    ctx().writeAndFlush(resp);
    discarding = !r.requestDone; // the rest of the body is read and dropped
    finish(r, true);
  }

  /**
   * Answers the current gRPC request locally with a trailers-only response: HTTP 200 and {@code
   * grpc-status} in the only HEADERS frame, which ends the stream (gRPC's own error shape).
   */
  private void failGrpc(int grpcStatus, String message) {
    Request r = current;
    if (r == null) {
      return;
    }
    cancel(r.tryTimer);
    cancel(r.retryTimer);
    r.status = 200;
    r.grpcStatus = grpcStatus;
    FullHttpResponse resp =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled.EMPTY_BUFFER);
    resp.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, "application/grpc")
        .set("grpc-status", Integer.toString(grpcStatus))
        .set("grpc-message", message.replace(" ", "%20"))
        .set("x-request-id", r.requestId);
    if (r.retryAfterSeconds > 0) {
      resp.headers().set(HttpHeaderNames.RETRY_AFTER, r.retryAfterSeconds);
    }
    if (!cx.h2Downstream()) {
      resp.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
    }
    ctx().writeAndFlush(resp);
    discarding = !r.requestDone;
    finish(r, true);
  }

  private void finish(Request r, boolean continueReading) {
    if (current != r) {
      return;
    }
    current = null;
    cancel(r.requestTimer);
    cancel(r.tryTimer);
    cancel(r.retryTimer);
    endTry(r.attempt);
    ServiceTraffic st = r.traffic;
    if (st != null) {
      if (r.retryReserved) {
        r.retryReserved = false;
        st.budget().retryEnded();
      }
      if (r.budgetCounted) {
        r.budgetCounted = false;
        st.budget().requestEnded();
      }
    }
    r.body.forEach(HttpContent::release);
    r.body.clear();
    HttpMeters m = r.meters;
    if (m != null) {
      m.record(
          r.status,
          System.nanoTime() - r.start,
          r.bodyBytes,
          r.responseBytes,
          r.grpcStatus >= 0 ? Integer.toString(r.grpcStatus) : null);
    }
    RequestMirror mirror = r.mirror;
    if (mirror != null) {
      r.mirror = null;
      mirror.abandonIfIncomplete();
    }
    logRequest(r);
    if (!continueReading) {
      return;
    }
    if (cx.h2Downstream()) {
      return; // one request per stream; the codec ends the stream with the response
    }
    ChannelHandlerContext c = ctx();
    while (current == null || !current.requestDone) {
      HttpObject next = queued.poll();
      if (next == null) {
        break;
      }
      handle(next);
    }
    if (queued.isEmpty() && c.channel().isActive()) {
      c.channel().config().setAutoRead(true);
    }
  }

  /**
   * One access-log line per request: method, path (without the query), status, the endpoint it went
   * to, and a flag saying why the proxy answered itself: NR (no route, bad backend, no endpoint),
   * UF (connect failed), UR (upstream reset), UT (timeout), DPE (malformed request), UO (circuit
   * breaker overflow), RL (rate limited).
   */
  private void logRequest(Request r) {
    ConnectionLog line = r.accessLog;
    if (line == null) {
      return;
    }
    r.accessLog = null;
    line.http(r.method, r.path, r.status);
    if (r.grpcStatus >= 0) {
      line.grpc(r.grpcStatus);
    }
    if (r.delayed) {
      line.flag(ResponseFlag.DI);
    }
    HttpRouter.Forward f = r.forward;
    int status = r.localStatus != 0 ? r.localStatus : r.status;
    if (r.flag != null) {
      if (f != null) {
        line.upstream(f.target().upstream());
      }
      line.flag(r.flag);
    } else if (f != null) {
      line.upstream(f.target().upstream());
      switch (status) {
        case 502 -> line.flag(ResponseFlag.UR);
        case 503 -> line.flag(ResponseFlag.UF);
        case 504 -> line.flag(ResponseFlag.UT);
        default -> {}
      }
    } else if (status == 400 || status == 414 || status == 431) {
      line.flag(ResponseFlag.DPE);
    } else if (status >= 400) {
      line.flag(ResponseFlag.NR);
    }
    line.finish();
  }

  private static void cancel(@Nullable ScheduledFuture<?> f) {
    if (f != null) {
      f.cancel(false);
    }
  }

  private void closeDownstream() {
    ChannelHandlerContext c = ctx();
    if (downstreamFlushPending) {
      downstreamFlushPending = false;
      c.flush(); // what the client was sent so far, then the close that breaks the response
    }
    c.close();
  }

  private ChannelHandlerContext ctx() {
    ChannelHandlerContext c = ctx;
    if (c == null) {
      throw new IllegalStateException("handler not added");
    }
    return c;
  }

  @Override
  public void channelInactive(ChannelHandlerContext c) {
    Request r = current;
    if (r != null) {
      abandonExchange(r);
      finish(r, false);
    }
    HttpObject o;
    while ((o = queued.poll()) != null) {
      ReferenceCountUtil.release(o);
    }
    c.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
    log.debug("HTTP connection from {} failed", cx.source(), cause);
    c.close();
  }
}
