package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http2.Http2FrameCodec;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The sniffer in a pipeline: it installs the right codec or falls back to L4, then leaves. */
class SnifferPipelineTest {
  private static EmbeddedChannel channel(boolean declared, AtomicInteger fallbacks) {
    EmbeddedChannel ch = new EmbeddedChannel();
    ch.pipeline().addLast(new HttpProxy.Sniffer(null, declared, fallbacks::incrementAndGet));
    return ch;
  }

  @Test
  void nonHttpBytesGoToL4UnchangedAndTheSnifferLeaves() {
    AtomicInteger fallbacks = new AtomicInteger();
    EmbeddedChannel ch = channel(false, fallbacks);
    ch.writeInbound(Unpooled.copiedBuffer("SSH-2.0-x\r\n", StandardCharsets.US_ASCII));
    assertEquals(1, fallbacks.get());
    assertNull(ch.pipeline().get(HttpProxy.Sniffer.class));
    ByteBuf passed = ch.readInbound();
    try {
      assertEquals("SSH-2.0-x\r\n", passed.toString(StandardCharsets.US_ASCII));
    } finally {
      passed.release();
    }
    ch.finishAndReleaseAll();
  }

  @Test
  void theH2PrefaceInstallsTheHttp2Codec() {
    AtomicInteger fallbacks = new AtomicInteger();
    EmbeddedChannel ch = new EmbeddedChannel();
    // The h2 codec needs a Context only for streams; none is opened in this test.
    ch.pipeline().addLast(new HttpProxy.Sniffer(ctx(), false, fallbacks::incrementAndGet));
    // Split across two reads: the decision waits for the whole preface.
    ch.writeInbound(Unpooled.copiedBuffer("PRI * HTTP/2.0\r\n", StandardCharsets.US_ASCII));
    assertNotNull(ch.pipeline().get(HttpProxy.Sniffer.class));
    assertNull(ch.pipeline().get(Http2FrameCodec.class));
    ch.writeInbound(Unpooled.copiedBuffer("\r\nSM\r\n\r\n", StandardCharsets.US_ASCII));
    assertNotNull(ch.pipeline().get(Http2FrameCodec.class));
    assertNull(ch.pipeline().get(HttpProxy.Sniffer.class));
    assertEquals(0, fallbacks.get());
    ch.finishAndReleaseAll();
  }

  @Test
  void aSilentClientOnAnUndeclaredPortFallsBackToL4AfterTheTimeout() {
    AtomicInteger fallbacks = new AtomicInteger();
    EmbeddedChannel ch = channel(false, fallbacks);
    HttpProxy.Sniffer s = ch.pipeline().get(HttpProxy.Sniffer.class);
    ch.eventLoop().schedule(s::timedOut, HttpProxy.SNIFF_TIMEOUT_MILLIS, TimeUnit.MILLISECONDS);
    ch.advanceTimeBy(HttpProxy.SNIFF_TIMEOUT_MILLIS - 1, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertEquals(0, fallbacks.get());
    ch.advanceTimeBy(1, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertEquals(1, fallbacks.get());
    assertNull(ch.pipeline().get(HttpProxy.Sniffer.class));
    ch.finishAndReleaseAll();
  }

  @Test
  void aRequestLineInstallsTheHttp1Codec() {
    EmbeddedChannel ch = new EmbeddedChannel();
    ch.pipeline().addLast(new HttpProxy.Sniffer(ctx(), false, () -> {}));
    ch.writeInbound(Unpooled.copiedBuffer("GE", StandardCharsets.US_ASCII));
    assertNotNull(ch.pipeline().get(HttpProxy.Sniffer.class));
    ch.writeInbound(Unpooled.copiedBuffer("T ", StandardCharsets.US_ASCII));
    assertNotNull(ch.pipeline().get(HttpServerCodec.class));
    assertNull(ch.pipeline().get(HttpProxy.Sniffer.class));
    ch.finishAndReleaseAll();
  }

  private static RequestHandler.Context ctx() {
    // A plane with nothing but its defaults: the codecs read only the path settings from it.
    dev.nodemesh.proxy.DataPlane plane =
        dev.nodemesh.proxy.DataPlane.builder(
                null,
                null,
                null,
                new dev.nodemesh.proxy.config.SnapshotHolder(), // the policy re-check listens to it
                new dev.nodemesh.proxy.agent.PodRegistry(),
                new dev.nodemesh.proxy.metrics.ProxyMetrics("test-node"),
                null,
                0)
            .build();
    return new RequestHandler.Context(
        plane, null, null, 80, null, "10.0.0.1", false, HttpLimits.DEFAULT, new RequestMeters());
  }
}
