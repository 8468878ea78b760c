package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.l7.resilience.OutlierDetector;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import dev.nodemesh.proxy.l7.resilience.TrafficState;
import dev.nodemesh.proxy.metrics.HttpMeters;
import dev.nodemesh.proxy.outbound.Route;
import dev.nodemesh.proxy.upstream.UpstreamPools;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GenericFutureListener;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetAddress;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.IntUnaryOperator;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HTTP request and its answer: an explicit state machine ({@link State}; every change goes
 * through {@link #to}) that runs the route's layers in order and drives the tries. On the head:
 * route ({@link HttpRouter}) → TrafficPolicy state → endpoint pick ({@link EndpointPicker}) → rate
 * limit ({@link LocalRateLimit}) → retry and budget ({@link Retries}) → header filters ({@link
 * HeaderFilters}) → L7 authorization ({@link RequestAuthorization}) → fault ({@link Faults}) →
 * request timeout → mirror → the first try. A try takes the breaker's claims ({@link Attempt}), an
 * upstream through the one seam ({@link ExchangeUpstreams}), sends the head and the body ({@link
 * ReplayBuffer}), and ends in a response passed on, a retry after backoff, or a local answer
 * ({@link LocalReplies}, gRPC statuses from {@link GrpcStatuses}). At the end: meters, the access
 * log line ({@link AccessLogFlags}), every claim given back. Runs on the downstream channel's event
 * loop only; the {@link RequestHandler} owns the connection (reads, pipelining, flush batching).
 */
final class Exchange implements UpstreamPools.ResponseSink, GenericFutureListener<Future<Channel>> {
  private static final Logger log = LoggerFactory.getLogger(Exchange.class);
  // Static: a method reference to the thread's generator would be allocated per request.
  private static final IntUnaryOperator WEIGHT_DRAW =
      bound -> ThreadLocalRandom.current().nextInt(bound);

  /**
   * Where an exchange is. Allowed moves are listed once, in {@link #next}; the request body's
   * arrival is independent of these (see {@link #bodyComplete}).
   */
  enum State {
    /** The head is being decided (route, limits, policy, fault); no try yet. */
    STARTED,
    /** A fault's delay runs before the first try (or the injected abort). */
    DELAYED,
    /** A try waits for its upstream exchange channel. */
    CONNECTING,
    /** A try's head (and body so far) went upstream; no response yet. */
    SENT,
    /** A try failed and the next waits for its backoff. */
    BACKING_OFF,
    /** The response started downstream: from here only its end or a broken response. */
    RESPONDING,
    /** Answered, failed or abandoned: everything given back, nothing more happens. */
    DONE;

    /** Whether {@code to} may follow this state. */
    boolean next(State to) {
      return switch (this) {
        case STARTED -> to == DELAYED || to == CONNECTING || to == DONE;
        case DELAYED -> to == CONNECTING || to == DONE;
        case CONNECTING -> to == SENT || to == BACKING_OFF || to == DONE;
        case SENT -> to == RESPONDING || to == BACKING_OFF || to == DONE;
        case BACKING_OFF -> to == CONNECTING || to == DONE;
        case RESPONDING -> to == DONE;
        case DONE -> false;
      };
    }
  }

  /** What the exchange needs from the connection it belongs to ({@link RequestHandler}). */
  interface Downstream {
    ChannelHandlerContext ctx();

    /** Flushes {@code upstream} now, or at the end of the downstream read in progress. */
    void flushUpstream(Channel upstream);

    /**
     * Writes a response part downstream (the end flushed at once, the rest at the upstream read's
     * end); stops reading {@code upstream} while the client is not writable.
     */
    void writeResponse(Object msg, @Nullable Channel upstream);

    /** The upstream read that produced response parts completed: flush them. */
    void upstreamReadComplete();

    /** Flushes what the client was sent and closes the connection (or stream). */
    void close();

    /** The exchange is {@link State#DONE}; the connection may go on with the next request. */
    void exchangeDone(Exchange e, boolean continueReading, boolean discardRest);

    /** The proxy's TrafficPolicy state. */
    TrafficState traffic();
  }

  private final Downstream down;
  private final RequestHandler.Context cx;
  private final ExchangeUpstreams upstreams;
  private final long start = System.nanoTime();
  private final String requestId;
  private final String method;
  private final String path;
  private final boolean headRequest;
  private final boolean grpc;
  private State state = State.STARTED;
  private boolean bodyComplete;
  // Set once routed:
  private @Nullable HttpRouteEntry entry;
  private HttpRoute.@Nullable Backend backendRef;
  private Route.@Nullable ToService target;
  private @Nullable ServiceTraffic traffic;
  private @Nullable Retries retries;
  private @Nullable ReplayBuffer body;
  private @Nullable HttpRequest upstreamHead;
  private @Nullable Workload client;
  private long hash;
  private @Nullable RequestMirror mirror;
  private HttpFault.@Nullable Abort abort;
  // The current try:
  private @Nullable Attempt attempt;
  private @Nullable Future<Channel> acquiring;
  private @Nullable Channel upstream;
  private boolean upstreamKeepAlive = true;
  private @Nullable ScheduledFuture<?> requestTimer;
  private @Nullable ScheduledFuture<?> tryTimer;
  // A fault's delay, then the backoff before a retry:
  private @Nullable ScheduledFuture<?> waitTimer;
  // What is observed (metrics, access log):
  private @Nullable HttpMeters meters;
  private @Nullable ConnectionLog accessLog;
  private long responseBytes;
  private int status;
  private int grpcStatus = -1;
  private int localStatus;
  private @Nullable ResponseFlag flag;
  // The response's head went out but its end never will: logged with a flag, counted incomplete.
  private boolean incomplete;
  private long retryAfterSeconds;
  private boolean delayed;
  // Reading the client is stopped because body parts wait for an upstream (bounded memory).
  private boolean holdingBody;

  Exchange(
      Downstream down, RequestHandler.Context cx, ExchangeUpstreams upstreams, HttpRequest head) {
    this.down = down;
    this.cx = cx;
    this.upstreams = upstreams;
    String id = head.headers().get("x-request-id");
    this.requestId = id != null ? id : HeaderFilters.requestId(ThreadLocalRandom.current());
    this.headRequest = HttpMethod.HEAD.equals(head.method());
    this.method = head.method().name();
    String uri = head.uri();
    int query = uri.indexOf('?');
    this.path = query < 0 ? uri : uri.substring(0, query); // the query may carry secrets
    this.grpc = GrpcStatuses.isGrpc(head.headers());
  }

  State state() {
    return state;
  }

  /**
   * The request waits for the start of its response: for an upstream, a fault's delay, a retry's
   * backoff or the upstream's answer. Nothing has been written to the client for it yet.
   */
  boolean awaitingResponse() {
    return state == State.DELAYED
        || state == State.CONNECTING
        || state == State.SENT
        || state == State.BACKING_OFF;
  }

  /** The whole request body was read (or nothing more can be read reliably). */
  boolean bodyComplete() {
    return bodyComplete;
  }

  /** The one place the state changes; a move the table does not allow is a bug. */
  private void to(State next) {
    if (!state.next(next)) {
      throw new IllegalStateException("exchange " + requestId + ": " + state + " -> " + next);
    }
    state = next;
  }

  // ---- the head: the layers in order ----

  /** Runs the layers on the request's head and starts the first try or answers locally. */
  void begin(HttpRequest head) {
    DecoderResult decoded = head.decoderResult();
    if (decoded.isFailure()) {
      accessLog = cx.plane().accessLog().begin(cx.meters().of(cx, null).labels());
      log.debug("malformed request from {}: {}", cx.source(), String.valueOf(decoded.cause()));
      bodyComplete = true; // nothing more can be read reliably from this connection
      fail(LocalReplies.forMalformed(decoded.cause()), "malformed request", true);
      return;
    }
    ConfigSnapshot snapshot = cx.plane().snapshots().current();
    ThreadLocalRandom random = ThreadLocalRandom.current();
    HttpRouter.Decision d =
        HttpRouter.route(
            snapshot,
            cx.source().namespace(),
            cx.service(),
            cx.servicePort(),
            method,
            head.uri(),
            head.headers(),
            WEIGHT_DRAW);
    if (d instanceof HttpRouter.Redirected r) {
      redirect(r, head);
      return;
    }
    if (!(d instanceof HttpRouter.ToBackend b)) {
      unrouted(d);
      return;
    }
    MeshService backend = b.service();
    ServiceTraffic st = down.traffic().service(backend.id(), snapshot.trafficPolicy(backend.id()));
    client = clientWorkload(snapshot);
    hash = EndpointPicker.hash(st.policy(), head.headers(), cx.clientIp());
    Route.ToService t =
        EndpointPicker.pick(
            snapshot, backend, b.port(), cx.dialled().getAddress(), st, client, hash, null, random);
    if (t == null) {
      unrouted(d);
      return;
    }
    HttpRouteEntry e = b.entry();
    entry = e;
    backendRef = b.backend();
    target = t;
    traffic = st;
    RequestMeters.Observed routed = cx.meters().of(cx, t);
    meters = routed.meters();
    accessLog = cx.plane().accessLog().begin(routed.labels());
    HttpRoute.Rule rule = e.rule();
    long wait = LocalRateLimit.retryAfterSeconds(st, client, cx.source(), cx.plane().trustDomain());
    if (wait > 0) {
      flag = ResponseFlag.RL;
      retryAfterSeconds = wait;
      fail(HttpResponseStatus.TOO_MANY_REQUESTS, "rate limited", false);
      return;
    }
    Retries rs = new Retries(st, rule.retry(), head.method(), e.route().retryNonIdempotent());
    retries = rs;
    body = new ReplayBuffer(rs.mayFollow(), cx.limits().maxReplayBytes());
    HttpRequest up =
        HeaderFilters.upstreamHead(
            head,
            e,
            b.backend(),
            h2Upstream(t),
            cx.h2Downstream(),
            requestId,
            cx.clientIp(),
            cx.service().name(),
            random);
    upstreamHead = up;
    if (!RequestAuthorization.allowed(cx, snapshot, t, method, path, head.headers(), accessLog)) {
      flag = ResponseFlag.DENY;
      fail(HttpResponseStatus.FORBIDDEN, "RBAC: access denied", false);
      return;
    }
    Faults.Draw fault = Faults.draw(snapshot, rule.fault(), random);
    if (fault.missing()) {
      flag = ResponseFlag.NR;
      fail(
          HttpResponseStatus.INTERNAL_SERVER_ERROR,
          "HTTPFault " + rule.fault() + " not found",
          false);
      return;
    }
    if (rule.requestTimeout() != null) {
      requestTimer =
          down.ctx()
              .executor()
              .schedule(
                  this::requestTimedOut, rule.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
    }
    abort = fault.abort();
    if (abort == null && rule.mirror() != null) {
      mirror = RequestMirror.start(cx, down.ctx().channel(), snapshot, rule.mirror(), up);
    }
    if (fault.delayed()) {
      delayed = true;
      to(State.DELAYED);
      waitTimer =
          down.ctx()
              .executor()
              .schedule(this::afterDelay, fault.delayNanos(), TimeUnit.NANOSECONDS);
    } else {
      afterDelay();
    }
  }

  /**
   * The rule redirects: the proxy answers with the filter's status and {@code Location} (no body)
   * and nothing goes upstream; counted and logged without a backend, as the other local answers.
   */
  private void redirect(HttpRouter.Redirected r, HttpRequest head) {
    RequestMeters.Observed unrouted = cx.meters().of(cx, null);
    meters = unrouted.meters();
    accessLog = cx.plane().accessLog().begin(unrouted.labels());
    String location =
        HttpRouter.redirectLocation(
            r.entry(),
            r.redirect(),
            head.uri(),
            head.headers().get(HttpHeaderNames.HOST),
            cx.service().name(),
            cx.servicePort());
    int code = r.redirect().statusCode();
    status = code;
    localStatus = code;
    down.ctx().writeAndFlush(LocalReplies.redirect(code, location, requestId));
    finish(true, !bodyComplete); // the rest of the body is read and dropped
  }

  /** The router or the picker found nowhere to go: 404, 500 or 503 without a backend label. */
  private void unrouted(HttpRouter.Decision d) {
    RequestMeters.Observed unrouted = cx.meters().of(cx, null);
    meters = unrouted.meters();
    accessLog = cx.plane().accessLog().begin(unrouted.labels());
    if (d instanceof HttpRouter.NoMatch) {
      fail(HttpResponseStatus.NOT_FOUND, "no route matches", false);
    } else if (d instanceof HttpRouter.BadBackend b) {
      log.debug("route {}: {}", b.entry().route().id(), b.reason());
      fail(HttpResponseStatus.INTERNAL_SERVER_ERROR, b.reason(), false);
    } else {
      fail(HttpResponseStatus.SERVICE_UNAVAILABLE, "no healthy upstream", false);
    }
  }

  private void afterDelay() {
    if (state == State.DONE) {
      return;
    }
    HttpFault.Abort a = abort;
    if (a == null) {
      startTry();
      return;
    }
    flag = ResponseFlag.FI;
    Integer grpcCode = a.grpcStatus();
    if (grpcCode != null) {
      failGrpc(grpcCode, "fault injected");
    } else {
      fail(HttpResponseStatus.valueOf(a.httpStatus()), "fault injected", false);
    }
  }

  /** The calling pod's workload (its node and zone, for locality), or null if not in config. */
  private @Nullable Workload clientWorkload(ConfigSnapshot snapshot) {
    List<InetAddress> ips = cx.source().ips();
    return ips.isEmpty() ? null : snapshot.workloadByIp(ips.get(0));
  }

  private static boolean h2Upstream(Route.ToService t) {
    return HttpProxy.isH2(t.port().appProtocol());
  }

  // ---- the request body ----

  /** A part of the request body (owned from now on). */
  void content(HttpContent content) {
    ReplayBuffer b = body;
    if (content instanceof LastHttpContent) {
      bodyComplete = true;
    }
    if (b == null || state == State.DONE) {
      content.release();
      return;
    }
    RequestMirror m = mirror;
    if (m != null) {
      m.content(content, cx.limits().maxReplayBytes());
    }
    b.add(content);
    flushBody();
    if (!bodyComplete && b.pendingBytes() > cx.limits().maxReplayBytes()) {
      // No upstream takes the body now (connecting, a fault delay, a retry backoff, or the
      // upstream is not writable): stop reading the client until one does, so a body is held up
      // to the replay limit plus one read, never without bound. Over h2c the stream's unread
      // frames hold back its WINDOW_UPDATEs, so the client's flow-control window stops it.
      holdingBody = true;
      down.ctx().channel().config().setAutoRead(false);
    }
  }

  private void flushBody() {
    Channel ex = upstream;
    ReplayBuffer b = body;
    Retries rs = retries;
    if (ex == null
        || b == null
        || rs == null
        || (state != State.SENT && state != State.RESPONDING)) {
      return;
    }
    boolean wrote = b.writeTo(ex);
    if (!b.replayable() && rs.tries() > 0) {
      rs.stop(); // the replay buffer is gone: this try is the last one
    }
    if (wrote) {
      down.flushUpstream(ex);
      if (!ex.isWritable()) {
        down.ctx().channel().config().setAutoRead(false);
      } else if (holdingBody) {
        resumeBody();
      }
    }
  }

  /** An upstream took the held body: read the client again (unless the body is all here). */
  private void resumeBody() {
    holdingBody = false;
    if (!bodyComplete) {
      down.ctx().channel().config().setAutoRead(true);
    }
  }

  // ---- tries ----

  private void startTry() {
    Route.ToService t = target;
    ServiceTraffic st = traffic;
    Retries rs = retries;
    ReplayBuffer b = body;
    if (state == State.DONE || t == null || st == null || rs == null || b == null) {
      return;
    }
    boolean holdsRetry = rs.startTry();
    b.rewind();
    if (rs.tries() > 1) {
      // A retry goes to another endpoint when there is one (the last one just failed).
      Route.ToService again =
          EndpointPicker.pick(
              cx.plane().snapshots().current(),
              t.service(),
              t.port(),
              cx.dialled().getAddress(),
              st,
              client,
              hash,
              EndpointPicker.key(st, t),
              ThreadLocalRandom.current());
      if (again != null) {
        t = again;
        target = again;
      }
    }
    Attempt a = Attempt.admit(st, EndpointPicker.key(st, t));
    if (a == null) {
      flag = ResponseFlag.UO;
      if (holdsRetry) {
        st.budget().retryEnded();
      }
      rs.stop();
      fail(HttpResponseStatus.SERVICE_UNAVAILABLE, "upstream overflow", false);
      return;
    }
    a.holdsRetry(holdsRetry);
    attempt = a;
    to(State.CONNECTING);
    Future<Channel> acquired = upstreams.acquire(cx, down.ctx().channel(), t, h2Upstream(t));
    acquiring = acquired;
    HttpRouteEntry e = entry;
    if (e != null && e.rule().backendTimeout() != null) {
      tryTimer =
          down.ctx()
              .executor()
              .schedule(
                  this::tryTimedOut, e.rule().backendTimeout().toNanos(), TimeUnit.NANOSECONDS);
    }
    acquired.addListener(this);
  }

  /** The upstream of a try is there, or could not be had. */
  @Override
  public void operationComplete(Future<Channel> fut) {
    if (fut != acquiring || state != State.CONNECTING) {
      // A try given up meanwhile (its claims were given back then): the channel goes back.
      if (fut.isSuccess()) {
        upstreams.release(fut.getNow(), true);
      }
      return;
    }
    acquiring = null;
    Attempt a = attempt;
    Route.ToService t = target;
    HttpRequest head = upstreamHead;
    Retries rs = retries;
    if (a == null || t == null || head == null || rs == null) {
      throw new IllegalStateException("a try without its request: " + requestId);
    }
    a.upstreamReady();
    if (!fut.isSuccess()) {
      log.debug("upstream {} failed: {}", t.upstream(), String.valueOf(fut.cause()));
      a.outcome(OutlierDetector.Outcome.CONNECT_FAILURE, false);
      tryFailed(HttpResponseStatus.SERVICE_UNAVAILABLE, "upstream connect failed");
      return;
    }
    Channel ex = fut.getNow();
    upstream = ex;
    a.connectionTaken(h2Upstream(t));
    upstreams.bind(ex, this);
    to(State.SENT);
    // A try that may be followed by another sends a copy (a retry sends the head again); the last
    // possible try sends the head itself.
    ex.write(
        rs.mayFollow()
            ? new DefaultHttpRequest(
                head.protocolVersion(), head.method(), head.uri(), head.headers().copy())
            : head);
    flushBody();
    down.flushUpstream(ex);
  }

  /** A try failed before any response byte reached the client: retry or answer. */
  private void tryFailed(HttpResponseStatus failure, String why) {
    cancel(tryTimer);
    abandonUpstream();
    Retries rs = retries;
    ReplayBuffer b = body;
    if (rs != null && b != null && rs.retriesFailure(b.replayable() || b.untouched())) {
      long backoff = rs.nextBackoffNanos(ThreadLocalRandom.current());
      to(State.BACKING_OFF);
      waitTimer = down.ctx().executor().schedule(this::startTry, backoff, TimeUnit.NANOSECONDS);
      return;
    }
    fail(failure, why, false);
  }

  /** Gives the current try's upstream and claims back (not reusable: mid-exchange). */
  private void abandonUpstream() {
    Attempt a = attempt;
    if (a != null) {
      a.end();
    }
    acquiring = null;
    Channel ex = upstream;
    upstream = null;
    if (ex != null) {
      upstreams.release(ex, false);
    }
  }

  private void tryTimedOut() {
    if (state == State.DONE) {
      return;
    }
    if (state == State.RESPONDING) {
      abortStarted(ResponseFlag.UT);
      return;
    }
    Attempt a = attempt;
    if (a != null) {
      a.outcome(OutlierDetector.Outcome.GATEWAY_ERROR, false);
    }
    tryFailed(HttpResponseStatus.GATEWAY_TIMEOUT, "upstream timed out");
  }

  private void requestTimedOut() {
    if (state == State.DONE) {
      return;
    }
    if (state == State.RESPONDING) {
      abortStarted(ResponseFlag.UT);
      return;
    }
    cancel(waitTimer);
    cancel(tryTimer);
    abandonUpstream();
    Retries rs = retries;
    if (rs != null) {
      rs.stop();
    }
    fail(HttpResponseStatus.GATEWAY_TIMEOUT, "request timed out", false);
  }

  /**
   * The response began but cannot complete: the client must see a broken response, and the access
   * log and metrics must not report it as the success its status says ({@code why}: UR upstream
   * reset, UT timeout).
   */
  private void abortStarted(ResponseFlag why) {
    incomplete = true;
    if (flag == null) {
      flag = why;
    }
    abandonUpstream();
    status = status == 0 ? 502 : status;
    finish(false, false);
    down.close();
  }

  /** The downstream connection (or stream) went away. */
  void abandon() {
    if (state == State.DONE) {
      return;
    }
    if (state == State.RESPONDING) {
      // The client went away (or its stream was reset) mid-response: not a completed answer.
      incomplete = true;
      if (flag == null) {
        flag = ResponseFlag.DR;
      }
    }
    abandonUpstream();
    finish(false, false);
  }

  // ---- the response (UpstreamPools.ResponseSink), on the same event loop ----

  @Override
  public void response(Channel exchange, HttpObject msg) {
    if (state == State.DONE || exchange != upstream) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof HttpResponse head) {
      if (state == State.SENT) {
        responseHead(exchange, head);
      } else {
        // A head after the response started is the upstream's protocol error: dropped, never
        // retried or written as a second head.
        ReferenceCountUtil.release(head);
      }
      return;
    }
    if (msg instanceof HttpContent c && state == State.RESPONDING) {
      forwardContent(c);
      return;
    }
    ReferenceCountUtil.release(msg);
  }

  private void responseHead(Channel exchange, HttpResponse head) {
    int code = head.status().code();
    if (code >= 100 && code < 200 && code != 101) {
      ReferenceCountUtil.release(head); // interim responses (100 Continue) stay between us
      return;
    }
    // A gRPC failure is an HTTP 200 whose only HEADERS carry grpc-status (trailers-only): it
    // counts as the HTTP status that grpc-status stands for, so retry codes and outlier detection
    // see it (a status in real trailers comes after the response started: too late).
    boolean trailersOnly =
        head instanceof FullHttpMessage whole
            && !whole.content().isReadable()
            && whole.trailingHeaders().isEmpty();
    int effective = GrpcStatuses.effectiveStatus(code, head.headers(), trailersOnly);
    Attempt a = attempt;
    if (a != null) {
      a.outcome(
          effective == 502 || effective == 503 || effective == 504
              ? OutlierDetector.Outcome.GATEWAY_ERROR
              : effective >= 500
                  ? OutlierDetector.Outcome.SERVER_ERROR
                  : OutlierDetector.Outcome.SUCCESS,
          true);
    }
    Retries rs = retries;
    ReplayBuffer b = body;
    if (rs != null && b != null && rs.retriesStatus(effective, b.replayable())) {
      ReferenceCountUtil.release(head);
      tryFailed(HttpResponseStatus.valueOf(effective), "retrying");
      return;
    }
    to(State.RESPONDING);
    status = code;
    // A server that says it closes (Connection: close, or HTTP/1.0 without keep-alive) has its
    // connection closed here too, never pooled for the next request.
    upstreamKeepAlive = HttpUtil.isKeepAlive(head);
    grpcStatus(head.headers());
    HttpResponse out =
        HeaderFilters.downstreamHead(head, entry, backendRef, headRequest, cx.h2Downstream());
    if (head instanceof FullHttpMessage full
        && cx.h2Downstream()
        && !full.content().isReadable()
        && full.trailingHeaders().isEmpty()) {
      // gRPC's trailers-only answer: one HEADERS frame that ends the stream, kept as one.
      full.release();
      upstream = null;
      down.writeResponse(
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1,
              out.status(),
              Unpooled.EMPTY_BUFFER,
              out.headers(),
              new DefaultHttpHeaders()),
          null);
      upstreams.release(exchange, bodyComplete && upstreamKeepAlive);
      finish(true, false);
      return;
    }
    if (head instanceof HttpContent c) {
      down.ctx().write(out);
      forwardContent(c);
    } else {
      down.writeResponse(out, upstream);
    }
  }

  private void grpcStatus(HttpHeaders h) {
    String g = h.get("grpc-status");
    if (g != null) {
      try {
        grpcStatus = Integer.parseInt(g.trim());
      } catch (NumberFormatException e) {
        grpcStatus = GrpcStatuses.UNKNOWN; // as a gRPC client reads a bad status
      }
    }
  }

  private void forwardContent(HttpContent c) {
    boolean last = c instanceof LastHttpContent;
    responseBytes += c.content().readableBytes();
    if (last) {
      grpcStatus(((LastHttpContent) c).trailingHeaders());
    }
    HttpContent out =
        last
            ? new DefaultLastHttpContent(
                c.content().retain(), ((LastHttpContent) c).trailingHeaders())
            : c.retain();
    c.release();
    down.writeResponse(out, upstream);
    if (last) {
      Attempt a = attempt;
      if (a != null) {
        a.end();
      }
      Channel ex = upstream;
      upstream = null;
      // Reusable only when the request was sent whole: otherwise the connection is mid-message.
      if (ex != null) {
        upstreams.release(ex, bodyComplete && upstreamKeepAlive);
      }
      finish(true, false);
    }
  }

  @Override
  public void closed(Channel exchange) {
    if (state == State.DONE || exchange != upstream) {
      return;
    }
    upstream = null;
    if (state != State.RESPONDING) {
      Attempt a = attempt;
      if (a != null) {
        a.outcome(OutlierDetector.Outcome.CONNECT_FAILURE, false);
      }
      tryFailed(HttpResponseStatus.BAD_GATEWAY, "upstream reset");
    } else {
      abortStarted(ResponseFlag.UR);
    }
  }

  @Override
  public void readComplete(Channel exchange) {
    down.upstreamReadComplete();
  }

  @Override
  public void writable(Channel exchange, boolean writable) {
    if (writable && state != State.DONE && exchange == upstream) {
      holdingBody = false;
      down.ctx().channel().config().setAutoRead(true);
    }
  }

  /** The client can take more: read the upstream again. */
  void downstreamWritable() {
    Channel ex = upstream;
    if (ex != null && state != State.DONE) {
      ex.config().setAutoRead(true);
    }
  }

  // ---- local answers and the end ----

  /**
   * Answers the request locally (no response started); closes HTTP/1.1 if asked to. A gRPC request
   * (not a malformed one) gets the gRPC status for {@code status} instead, trailers-only.
   */
  private void fail(HttpResponseStatus answer, String why, boolean close) {
    if (state == State.DONE) {
      return;
    }
    localStatus = answer.code();
    if (grpc && !close) {
      failGrpc(GrpcStatuses.forLocalAnswer(answer.code(), flag), why);
      return;
    }
    status = answer.code();
    boolean closing = close && !cx.h2Downstream();
    FullHttpResponse resp =
        LocalReplies.http(answer, why, requestId, headRequest, retryAfterSeconds, closing);
    if (closing) {
      down.ctx().writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
      finish(false, false);
      return;
    }
    down.ctx().writeAndFlush(resp);
    finish(true, !bodyComplete); // the rest of the body is read and dropped
  }

  /** Answers a gRPC request locally with a trailers-only response ({@link LocalReplies#grpc}). */
  private void failGrpc(int code, String message) {
    if (state == State.DONE) {
      return;
    }
    status = 200;
    grpcStatus = code;
    down.ctx()
        .writeAndFlush(
            LocalReplies.grpc(code, message, requestId, retryAfterSeconds, cx.h2Downstream()));
    finish(true, !bodyComplete);
  }

  private void finish(boolean continueReading, boolean discardRest) {
    if (state == State.DONE) {
      return;
    }
    to(State.DONE);
    acquiring = null;
    cancel(requestTimer);
    cancel(tryTimer);
    cancel(waitTimer);
    if (holdingBody && cx.h2Downstream()) {
      // The rest of the stream's body is read and dropped (HTTP/1.1: the connection decides).
      holdingBody = false;
      down.ctx().channel().config().setAutoRead(true);
    }
    Attempt a = attempt;
    if (a != null) {
      a.end();
    }
    Retries rs = retries;
    if (rs != null) {
      rs.end();
    }
    ReplayBuffer b = body;
    if (b != null) {
      b.release();
    }
    HttpMeters m = meters;
    if (m != null && incomplete) {
      m.recordIncomplete(System.nanoTime() - start, b != null ? b.bytes() : 0, responseBytes);
    } else if (m != null) {
      m.record(
          status,
          System.nanoTime() - start,
          b != null ? b.bytes() : 0,
          responseBytes,
          grpcStatus >= 0 ? Integer.toString(grpcStatus) : null);
    }
    RequestMirror mr = mirror;
    if (mr != null) {
      mirror = null;
      mr.abandonIfIncomplete();
    }
    logRequest();
    down.exchangeDone(this, continueReading, discardRest);
  }

  /** One access-log line per request: method, path (no query), status, endpoint, flag. */
  private void logRequest() {
    ConnectionLog line = accessLog;
    if (line == null) {
      return;
    }
    accessLog = null;
    line.http(method, path, status);
    if (grpcStatus >= 0) {
      line.grpc(grpcStatus);
    }
    if (delayed) {
      line.flag(ResponseFlag.DI);
    }
    Route.ToService t = target;
    if (t != null) {
      line.upstream(t.upstream());
    }
    ResponseFlag f = AccessLogFlags.flag(flag, t != null, localStatus != 0 ? localStatus : status);
    if (f != null) {
      line.flag(f);
    }
    line.finish();
  }

  private static void cancel(@Nullable ScheduledFuture<?> f) {
    if (f != null) {
      f.cancel(false);
    }
  }
}
