package dev.nodemesh.proxy.l4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The L4 idle timeout on an EmbeddedChannel with a frozen clock: bytes either way keep it open. */
class RelayIdleTimeoutTest {
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private EmbeddedChannel ch;

  @AfterEach
  void tearDown() {
    ch.finishAndReleaseAll();
  }

  private void advance(long seconds) {
    ch.advanceTimeBy(seconds, TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
  }

  private double idles() {
    return registry
        .counter(ConnectionTimeouts.METER, "reason", ConnectionTimeouts.TCP_IDLE)
        .count();
  }

  @Test
  void bytesEitherWayKeepARelayOpenAndSilenceClosesIt() {
    ch = new EmbeddedChannel();
    ch.freezeTime();
    ch.pipeline().addLast(new RelayIdleTimeout(Duration.ofSeconds(60), registry));
    advance(50);
    ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {1})); // from the client
    ((ByteBuf) ch.readInbound()).release();
    advance(50);
    assertTrue(ch.isOpen(), "50 s after the last byte in");
    ch.writeOutbound(Unpooled.wrappedBuffer(new byte[] {2})); // to the client
    ((ByteBuf) ch.readOutbound()).release();
    advance(59);
    assertTrue(ch.isOpen(), "59 s after the last byte out");
    assertEquals(0.0, idles());
    advance(2);
    assertFalse(ch.isOpen(), "61 s without a byte either way");
    assertEquals(1.0, idles());
  }
}
