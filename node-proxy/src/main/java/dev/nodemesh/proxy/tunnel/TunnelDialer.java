package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.proxy.upstream.DirectDialer;
import dev.nodemesh.proxy.upstream.HboneDialer;
import dev.nodemesh.proxy.upstream.UpstreamPath;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.io.IOException;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HBONE client: CONNECT streams along {@link UpstreamPath.Hbone} paths, on connections pooled
 * per event loop ({@link TunnelPool}) whose TCP sockets the {@link DirectDialer} makes in the
 * source pod's namespace. One per data plane, from the {@link Tunnel} that holds the TLS contexts,
 * settings, metrics and clock both sides share.
 */
public final class TunnelDialer implements HboneDialer {
  private static final Logger log = LoggerFactory.getLogger(TunnelDialer.class);

  private final Tunnel tunnel;
  private final DirectDialer direct;
  private final ConcurrentHashMap<EventLoop, TunnelPool> pools = new ConcurrentHashMap<>();

  public TunnelDialer(Tunnel tunnel, DirectDialer direct) {
    this.tunnel = tunnel;
    this.direct = direct;
  }

  /** The stream as a byte channel ({@link StreamBytes}), for an HTTP client codec. */
  @Override
  public Future<Channel> dial(Channel downstream, UpstreamPath path) {
    Promise<Channel> p = downstream.eventLoop().newPromise();
    if (!(path instanceof UpstreamPath.Hbone h)) {
      return p.setFailure(new IllegalArgumentException("not an HBONE path: " + path));
    }
    openStream(downstream, h)
        .addListener(
            (Future<Http2StreamChannel> f) -> {
              if (!f.isSuccess()) {
                p.setFailure(f.cause());
                return;
              }
              Channel stream = StreamBytes.install(f.getNow());
              if (!p.trySuccess(stream)) {
                stream.close();
              }
            });
    return p;
  }

  /**
   * A CONNECT stream to the path's target, answered 200, on a pooled connection presenting the
   * source's identity and requiring the expected one (made from the source's namespace when a new
   * one is needed). The stream does not auto-read. Fails when the connection cannot be made or the
   * server refuses the stream.
   */
  @Override
  public Future<Http2StreamChannel> openStream(
      Channel downstream, UpstreamPath.Hbone path, BeforeAnswer beforeAnswer) {
    Promise<Http2StreamChannel> result = downstream.eventLoop().newPromise();
    TunnelPool.Key key =
        new TunnelPool.Key(
            path.sourceIdentity(), path.target().getAddress(), path.expectedIdentity());
    attempt(downstream, path, key, result, beforeAnswer, true);
    return result;
  }

  /**
   * Opens a stream and sends CONNECT. A stream the server refused without processing it (RST_STREAM
   * REFUSED_STREAM, e.g. because the connection's certificates expired by the server's clock, or
   * above the last stream id of a GOAWAY) is tried once more: the refused connection drains on the
   * server's GOAWAY, so the pool makes a new one. Nothing was relayed yet.
   */
  private void attempt(
      Channel onLoop,
      UpstreamPath.Hbone path,
      TunnelPool.Key key,
      Promise<Http2StreamChannel> result,
      BeforeAnswer beforeAnswer,
      boolean mayRetry) {
    EventLoop loop = onLoop.eventLoop();
    TunnelPool pool = pools.computeIfAbsent(loop, l -> new TunnelPool(tunnel, direct, l));
    pool.openStream(key, path.from(), onLoop)
        .addListener(
            (Future<Http2StreamChannel> f) -> {
              if (!f.isSuccess()) {
                result.tryFailure(f.cause());
                return;
              }
              Http2StreamChannel stream = f.getNow();
              if (result.isDone()) {
                stream.close();
                return;
              }
              stream
                  .pipeline()
                  .addLast(
                      "connect-response",
                      new ConnectResponseHandler(
                          answer -> {
                            if (answer == ConnectResponseHandler.Answer.OK) {
                              if (!result.trySuccess(stream)) {
                                stream.close();
                              }
                              return;
                            }
                            if (answer == ConnectResponseHandler.Answer.REFUSED && mayRetry) {
                              log.debug("tunnel {}: stream refused, trying a new connection", key);
                              // Once the connection has seen the GOAWAY (read after the streams'
                              // notices) and left the pool.
                              loop.execute(
                                  () -> attempt(onLoop, path, key, result, beforeAnswer, false));
                              return;
                            }
                            result.tryFailure(
                                new IOException("tunnel " + key + ": CONNECT " + answer));
                          }));
              stream.write(
                  new DefaultHttp2HeadersFrame(
                      new DefaultHttp2Headers()
                          .method(HttpMethod.CONNECT.asciiName())
                          .authority(ConnectTarget.format(path.target()))));
              beforeAnswer.connectSent(stream);
              stream.flush();
              stream.read();
            });
  }

  /** Client connections held now over every loop (call from a test or admin, racy by nature). */
  int pooledConnections() {
    int n = 0;
    for (TunnelPool p : pools.values()) {
      n += p.size();
    }
    return n;
  }
}
