package dev.nodemesh.proxy.l7.path;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.HttpRequest;

/**
 * Puts {@link RequestTarget} between an HTTP server codec (HTTP/1.1, or HTTP/2 through {@code
 * Http2StreamFrameToHttpObjectCodec}) and whatever reads request heads, so every head is normalised
 * once before anything sees its path. A target that must be refused leaves the head marked as a
 * failed decode carrying the reason, so the next handler answers it as any malformed request (400,
 * access-log flag {@code DPE}) without a path of its own for it; the head keeps its target as
 * received, for the access log. Stateless: one instance may serve every pipeline.
 */
@ChannelHandler.Sharable
public final class RequestTargetFilter extends ChannelInboundHandlerAdapter {
  private final PathSettings settings;

  public RequestTargetFilter(PathSettings settings) {
    this.settings = settings;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof HttpRequest head && head.decoderResult().isSuccess()) {
      String invalid = RequestTarget.normalize(head, settings);
      if (invalid != null) {
        head.setDecoderResult(DecoderResult.failure(new InvalidRequestTarget(invalid)));
      }
    }
    ctx.fireChannelRead(msg);
  }

  /**
   * Why a request-target was refused. A client can cause one per request, so it is made without a
   * stack trace.
   */
  public static final class InvalidRequestTarget extends RuntimeException {
    private static final long serialVersionUID = 1L;

    InvalidRequestTarget(String reason) {
      super("invalid request-target: " + reason, null, false, false);
    }
  }
}
