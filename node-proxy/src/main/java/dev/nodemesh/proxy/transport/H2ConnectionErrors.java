package dev.nodemesh.proxy.transport;

import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2FrameCodec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Last on every server-side HTTP/2 connection pipeline (the h2c downstream and the HBONE server).
 * {@link Http2FrameCodec} passes a connection error (a malformed frame, a rapid-reset or
 * CONTINUATION flood) on down the pipeline after it has answered it with GOAWAY, and passes on any
 * other exception it does not own (a reset socket, a read error) untouched. Without a handler here
 * they reached the pipeline's tail, which logs each at WARN with its stack trace: a log line per
 * connection that any peer could cause at will, and one for every peer that resets its connection.
 * Logged at debug instead. An HTTP/2 error is left to the codec, which closes the connection after
 * its GOAWAY; anything else closes the connection here. An {@link Error} is fatal ({@link
 * FatalErrors}). Stateless, so one instance serves every connection.
 */
@ChannelHandler.Sharable
public final class H2ConnectionErrors extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(H2ConnectionErrors.class);

  public static final H2ConnectionErrors INSTANCE = new H2ConnectionErrors();

  private H2ConnectionErrors() {}

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    log.debug("HTTP/2 connection {} failed: {}", ctx.channel().remoteAddress(), cause.toString());
    if (Http2CodecUtil.getEmbeddedHttp2Exception(cause) == null) {
      ctx.close();
    }
  }
}
