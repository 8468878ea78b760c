package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.Admission;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.l4.StreamRelay;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One CONNECT stream on a pod's 15008 listener: checks that {@code :authority} names this pod, asks
 * the {@link dev.nodemesh.proxy.authz.Authorizer} with the caller's verified SPIFFE ID, then
 * connects to the app from inside the pod's namespace, answers {@code :status 200} and hands the
 * pair to {@link StreamRelay}, or, when the destination has policy with L7 rules, to {@link
 * HttpPolicyStream}, which checks each HTTP request inside the stream. A malformed request or
 * another pod's address gets 400, a denied one 403, an app that refuses 503; each ends the stream.
 * An allowed stream is admitted in {@link HboneServer.Context#admissions()}: a policy change that
 * no longer allows it resets the stream (RST_STREAM), which ends the app socket with it.
 */
final class ConnectStreamHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(ConnectStreamHandler.class);

  private final Tunnel tunnel;
  private final HboneServer.Context context;
  private final EnrolledPod pod;
  private final SpiffeId peer;
  private final InetAddress peerIp;
  private final HboneServer.Expiry expiry;
  private boolean requested;

  ConnectStreamHandler(
      Tunnel tunnel,
      HboneServer.Context context,
      EnrolledPod pod,
      SpiffeId peer,
      InetAddress peerIp,
      HboneServer.Expiry expiry) {
    this.expiry = expiry;
    this.tunnel = tunnel;
    this.context = context;
    this.pod = pod;
    this.peer = peer;
    this.peerIp = peerIp;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    ctx.read(); // the request's HEADERS; DATA waits in the stream until the app is connected
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (requested || !(msg instanceof Http2HeadersFrame headers)) {
      // DATA before the answer: a protocol error for CONNECT here; reset the stream.
      ReferenceCountUtil.release(msg);
      Relays.reset(ctx.channel());
      return;
    }
    requested = true;
    Http2StreamChannel stream = (Http2StreamChannel) ctx.channel();
    TunnelMetrics.Side m = tunnel.metrics().server();
    m.streamsOpened().increment();
    if (tunnel.clock().millis() >= expiry.atMillis) {
      refuseExpired(stream, m);
      return;
    }
    Http2Headers h = headers.headers();
    InetSocketAddress target =
        HttpMethod.CONNECT.asciiName().contentEquals(h.method() == null ? "" : h.method())
            ? ConnectTarget.parse(h.authority())
            : null;
    if (target == null || !pod.ips().contains(target.getAddress()) || headers.isEndStream()) {
      m.streamsRefused().increment();
      log.debug("HBONE {} from {}: bad CONNECT {} {}", pod, peer, h.method(), h.authority());
      respond(stream, "400", true);
      return;
    }
    ConfigSnapshot snapshot = context.snapshots().current();
    Workload destination = snapshot.workloadByIp(target.getAddress());
    if (destination == null) {
      // Enrolled here but not (yet) in the config in force: no policy to apply, so no stream.
      m.streamsRefused().increment();
      log.debug(
          "HBONE {} from {}: no workload at {} in config version {}",
          pod,
          peer,
          target.getAddress(),
          snapshot.version());
      respond(stream, "400", true);
      return;
    }
    TrafficLabels labels =
        new TrafficLabels(
            "destination",
            callerWorkload(snapshot, peerIp, peer, tunnel.trustDomain()),
            peer.namespace(),
            destination.name(),
            destination.namespace(),
            TrafficLabels.UNKNOWN,
            peer.toString(),
            SpiffeId.of(tunnel.trustDomain(), destination).toString());
    ConnectionLog accessLog = context.accessLog().begin(labels);
    ConnectionSource caller = new ConnectionSource(peer, peerIp, true);
    // A destination with L7 rules gets them checked per request inside the stream; the CONNECT is
    // refused only for what no request could change (identity, namespace, address, port).
    boolean l7 = snapshot.needsL7Authorization(destination);
    Decision d =
        l7
            ? tunnel
                .authorizer()
                .checkBeforeRequests(snapshot, destination, target.getPort(), caller)
            : tunnel.authorizer().check(snapshot, destination, target.getPort(), caller);
    if (accessLog != null) {
      accessLog
          .sourcePrincipal(peer.toString())
          .destinationPrincipal(SpiffeId.of(tunnel.trustDomain(), destination).toString())
          .originalDestination(target)
          .authz(d.allowed() ? "allow" : "deny", d.policy());
    }
    if (!d.allowed()) {
      m.streamsRefused().increment();
      context
          .metrics()
          .policyDenials(
              "destination",
              peer.toString(),
              destination.name(),
              destination.namespace(),
              d.reason())
          .increment();
      log.debug("HBONE {} from {} denied by {}: {}", target, peer, d.policy(), d.reason());
      respond(stream, "403", true);
      if (accessLog != null) {
        accessLog.flag(ResponseFlag.DENY).finish();
      }
      return;
    }
    // The stream stands on this decision until policy changes, then it is asked again (for an HTTP
    // stream only its connection part: each request is checked against the current policy anyway).
    context
        .admissions()
        .admit(
            stream,
            Admission.connection(
                tunnel.authorizer(),
                l7,
                "destination",
                snapshot,
                destination,
                target.getPort(),
                caller,
                accessLog));
    ConnectionMeters meters = context.metrics().connection(labels);
    ctx.pipeline().remove(this);
    long start = System.nanoTime();
    context
        .direct()
        .connect(stream, pod.netns(), target, peerIp) // the app sees the caller pod's address
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (!f.isSuccess()) {
                    meters.failed().increment();
                    log.debug("HBONE {}: app refused: {}", target, f.cause().toString());
                    f.channel().close();
                    respond(stream, "503", true);
                    if (accessLog != null) {
                      accessLog.flag(ResponseFlag.UF).finish();
                    }
                    return;
                  }
                  if (!stream.isActive()) {
                    f.channel().close();
                    return;
                  }
                  meters.connected(System.nanoTime() - start);
                  if (accessLog != null) {
                    accessLog.upstream(target).upstreamConnected(System.nanoTime() - start);
                  }
                  long[] sent = new long[2]; // [0] towards the app, [1] back to the caller
                  respond(stream, "200", false);
                  StreamRelay.Listener listener =
                      new StreamRelay.Listener() {
                        @Override
                        public void bytes(boolean fromSocket, int count) {
                          // fromSocket: the app's answer, back towards the caller.
                          (fromSocket ? meters.receivedBytes() : meters.sentBytes())
                              .increment(count);
                          sent[fromSocket ? 1 : 0] += count;
                        }

                        @Override
                        public void closed(@Nullable Throwable error) {
                          meters.ended(System.nanoTime() - start);
                          if (accessLog != null) {
                            accessLog.bytes(sent[0], sent[1]);
                            if (error != null) {
                              accessLog.flag(ResponseFlag.UR);
                            }
                            accessLog.finish();
                          }
                        }
                      };
                  if (l7) {
                    HttpPolicyStream.start(
                        tunnel,
                        context,
                        stream,
                        f.channel(),
                        target,
                        caller,
                        destination,
                        listener);
                  } else {
                    StreamRelay.start(f.channel(), stream, new ArrayDeque<>(), false, listener);
                  }
                });
  }

  /**
   * The connection's certificates have expired: GOAWAY once (its last stream id includes this one,
   * so the client learns of the refusal from the reset, not from the GOAWAY), then RST_STREAM
   * REFUSED_STREAM, which tells the client that nothing was processed and it may retry on a new
   * connection. Streams already open keep going; the client closes the connection once they end.
   */
  private void refuseExpired(Http2StreamChannel stream, TunnelMetrics.Side m) {
    m.streamsRefused().increment();
    log.debug("HBONE {} from {}: connection certificates expired, stream refused", pod, peer);
    if (!expiry.goAwaySent) {
      expiry.goAwaySent = true;
      stream.parent().writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR));
    }
    stream.writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.REFUSED_STREAM));
    stream.close();
  }

  /**
   * The caller's workload name for metrics and the access log: the workload the snapshot has at the
   * tunnel connection's source address (made from the caller pod's namespace, so its pod IP), but
   * only when that workload's identity is the SPIFFE ID the caller proved. An address the snapshot
   * does not know, or one whose workload has another service account or namespace (a stale
   * snapshot, a reused IP, a connection from outside a pod), stays {@code unknown}: a name is never
   * taken from an address alone.
   */
  static String callerWorkload(
      ConfigSnapshot snapshot, InetAddress peerIp, SpiffeId peer, String trustDomain) {
    Workload w = snapshot.workloadByIp(peerIp);
    if (w == null) {
      log.debug("HBONE caller {} at {}: no workload has that address", peer, peerIp);
      return TrafficLabels.UNKNOWN;
    }
    SpiffeId expected = SpiffeId.of(trustDomain, w);
    if (!expected.equals(peer)) {
      log.debug(
          "HBONE caller {} at {}: the workload there, {}/{}, is {}; source workload left unknown",
          peer,
          peerIp,
          w.namespace(),
          w.name(),
          expected);
      return TrafficLabels.UNKNOWN;
    }
    return w.name();
  }

  private static void respond(Http2StreamChannel stream, String status, boolean end) {
    if (!stream.isActive()) {
      return;
    }
    stream.writeAndFlush(
        new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status(status), end));
    if (end) {
      stream.close();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    log.debug("HBONE stream on {} failed", pod, cause);
    ctx.close();
  }
}
