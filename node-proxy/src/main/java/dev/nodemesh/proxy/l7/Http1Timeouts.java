package dev.nodemesh.proxy.l7;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.transport.MovingDeadline;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.LastHttpContent;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * The request-header and keep-alive idle timeouts of one HTTP/1.1 downstream connection, as nginx
 * has them: while no request is in flight the connection waits for a first byte at most {@code
 * idle}; from that first byte the whole head must arrive within {@code header} (slowloris: a client
 * trickling a head byte by byte is closed). While a request is in flight (its head read, its
 * response not yet ended) neither runs: a slow body or a long response is the route's timeouts'
 * business, never these. Two handlers share the state: {@link #bytes} before the codec sees the
 * first byte of a head, {@link #heads} after it sees request heads arrive and responses end.
 *
 * <p>Limit: bytes of a pipelined next head that arrived with the previous request are not seen as a
 * first byte, so such a head, if unfinished, is closed by the idle timeout rather than the header
 * timeout.
 */
final class Http1Timeouts {
  private final Duration header;
  private final Duration idle;
  private final Counter headerTimeouts;
  private final Counter idleTimeouts;
  private @Nullable ChannelHandlerContext ctx;
  // A kept-alive connection's requests move this deadline, not a task in the loop's timer queue.
  private final MovingDeadline deadline = new MovingDeadline(c -> c.channel().close());
  // Request heads read minus responses ended.
  private int inFlight;
  // No request in flight and no byte of the next head seen yet: the idle timer runs.
  private boolean awaitingFirstByte;

  Http1Timeouts(ConnectionTimeouts timeouts, MeterRegistry registry) {
    this.header = timeouts.requestHeader();
    this.idle = timeouts.httpIdle();
    this.headerTimeouts = ConnectionTimeouts.counter(registry, ConnectionTimeouts.REQUEST_HEADER);
    this.idleTimeouts = ConnectionTimeouts.counter(registry, ConnectionTimeouts.HTTP_IDLE);
  }

  /** Goes before the HTTP codec: the first byte of a head starts the header timer. */
  final ChannelHandler bytes =
      new ChannelInboundHandlerAdapter() {
        @Override
        public void handlerAdded(ChannelHandlerContext c) {
          ctx = c;
          // Installed once the sniffer has seen the first bytes of the first head.
          arm(header, headerTimeouts);
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
          if (awaitingFirstByte && inFlight == 0) {
            awaitingFirstByte = false;
            arm(header, headerTimeouts);
          }
          c.fireChannelRead(msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
          cancel();
          c.fireChannelInactive();
        }
      };

  /** Goes right after the HTTP codec: heads in, response ends out. */
  final ChannelHandler heads =
      new ChannelDuplexHandler() {
        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
          if (msg instanceof HttpRequest) {
            inFlight++;
            awaitingFirstByte = false;
            disarm();
          }
          c.fireChannelRead(msg);
        }

        @Override
        public void write(ChannelHandlerContext c, Object msg, ChannelPromise promise) {
          boolean interim =
              msg instanceof HttpResponse r
                  && r.status().code() >= 100
                  && r.status().code() < 200
                  && r.status().code() != 101;
          if (msg instanceof LastHttpContent && !interim && inFlight > 0 && --inFlight == 0) {
            awaitingFirstByte = true;
            arm(idle, idleTimeouts);
          }
          c.write(msg, promise);
        }
      };

  private void arm(Duration after, Counter counter) {
    ChannelHandlerContext c = ctx;
    if (c != null) {
      deadline.arm(c, after, counter);
    }
  }

  /** No timeout runs (a request is in flight); a scheduled check that comes finds nothing due. */
  private void disarm() {
    deadline.disarm();
  }

  private void cancel() {
    deadline.cancel();
  }
}
