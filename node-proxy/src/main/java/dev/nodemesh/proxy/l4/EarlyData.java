package dev.nodemesh.proxy.l4;

import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Holds what a client sent before the upstream connection was ready. Reads are off until then, but
 * a transport may still read once on its own (epoll does when the peer half-closes early), so a
 * client that writes and shuts down at once must not lose its bytes or its end of stream. Public
 * for the tunnel's client path, which waits for its stream the same way.
 *
 * <p>On the tunnel path the bytes need not wait for the CONNECT's answer: {@link #forwardTo} sends
 * what is held, and whatever the pending read brings later, on the stream right behind its HEADERS
 * (the receiving node keeps DATA in the stream, unread, until its app is connected), which saves
 * the round trip between the two nodes that waiting for the 200 costs. What is sent is a copy: the
 * bytes stay held until the answer, so a stream the server refused unprocessed can be tried again
 * on another connection with them. The end of stream is never forwarded early: it goes as
 * END_STREAM once the relay has started. Limits: only what the reads asked for before the answer
 * bring (the tunnel path asks for one), so the copies held are at most one read.
 */
public final class EarlyData extends ChannelInboundHandlerAdapter {
  public static final String NAME = "early-data";
  private static final Logger log = LoggerFactory.getLogger(EarlyData.class);

  private final ArrayDeque<ByteBuf> buffered = new ArrayDeque<>();
  private boolean inputShutdown;
  private @Nullable Http2StreamChannel forwardTo;
  private long forwardedBytes;

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof ByteBuf b) {
      buffered.add(b);
      Http2StreamChannel stream = forwardTo;
      if (stream != null && b.isReadable()) {
        forwardedBytes += b.readableBytes();
        stream.write(new DefaultHttp2DataFrame(b.retainedDuplicate()), stream.voidPromise());
        stream.flush();
      }
    } else {
      ReferenceCountUtil.release(msg);
    }
  }

  /**
   * Sends a copy of every byte held now, and of each later read, as DATA on {@code stream}, whose
   * CONNECT HEADERS have just been written; the caller flushes. A later call (a retry on another
   * stream) sends everything again there. Call on the event loop.
   */
  public void forwardTo(Http2StreamChannel stream) {
    forwardTo = stream;
    forwardedBytes = 0;
    for (ByteBuf b : buffered) {
      if (b.isReadable()) {
        forwardedBytes += b.readableBytes();
        stream.write(new DefaultHttp2DataFrame(b.retainedDuplicate()), stream.voidPromise());
      }
    }
  }

  /**
   * The stream {@link #forwardTo} was given has been answered 200: the bytes sent on it are
   * delivered, so they are let go. Returns how many there were; nothing is forwarded after this.
   */
  public long forwarded() {
    long n = forwardedBytes;
    if (forwardTo != null) {
      release();
    }
    forwardTo = null;
    forwardedBytes = 0;
    return n;
  }

  public ArrayDeque<ByteBuf> drain() {
    ArrayDeque<ByteBuf> out = new ArrayDeque<>(buffered);
    buffered.clear();
    return out;
  }

  public boolean inputShutdown() {
    return inputShutdown;
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent) {
      inputShutdown = true;
    } else {
      ReferenceCountUtil.release(evt);
    }
  }

  /**
   * A client that resets while its upstream is still being reached: the transport closes the
   * channel, and the waiting path finds it inactive. Ends here instead of at the pipeline's tail,
   * which logs a WARN with a stack trace.
   */
  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    log.debug(
        "client {} failed before its upstream was ready: {}", ctx.channel(), cause.toString());
    ctx.close();
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    release();
  }

  void release() {
    ByteBuf b;
    while ((b = buffered.poll()) != null) {
      b.release();
    }
  }
}
