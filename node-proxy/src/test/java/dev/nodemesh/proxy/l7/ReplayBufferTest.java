package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpContent;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The body kept for a replay, written to EmbeddedChannels standing in for two tries. */
class ReplayBufferTest {
  private static HttpContent part(String s) {
    return new DefaultHttpContent(Unpooled.copiedBuffer(s, StandardCharsets.US_ASCII));
  }

  private static String drain(EmbeddedChannel ch) {
    ch.flush(); // the buffer writes, the exchange flushes
    StringBuilder b = new StringBuilder();
    HttpContent c;
    while ((c = ch.readOutbound()) != null) {
      b.append(c.content().toString(StandardCharsets.US_ASCII));
      c.release();
    }
    return b.toString();
  }

  @Test
  void aKeptBodyIsSentAgainOnTheNextTry() {
    ReplayBuffer b = new ReplayBuffer(true, 16);
    assertTrue(b.untouched());
    b.add(part("abc"));
    EmbeddedChannel first = new EmbeddedChannel();
    assertTrue(b.writeTo(first));
    assertFalse(b.writeTo(first), "nothing new");
    b.add(new DefaultLastHttpContent(Unpooled.copiedBuffer("de", StandardCharsets.US_ASCII)));
    b.writeTo(first);
    assertEquals("abcde", drain(first));
    b.rewind();
    EmbeddedChannel second = new EmbeddedChannel();
    b.writeTo(second);
    assertEquals("abcde", drain(second));
    assertTrue(b.replayable());
    assertEquals(5, b.bytes());
    b.release();
    assertTrue(b.untouched());
    assertFalse(first.finishAndReleaseAll());
    assertFalse(second.finishAndReleaseAll());
  }

  @Test
  void pastTheLimitPartsGoOutAndAreForgotten() {
    ReplayBuffer b = new ReplayBuffer(true, 4);
    b.add(part("abc"));
    b.add(part("defg"));
    assertFalse(b.replayable());
    EmbeddedChannel ch = new EmbeddedChannel();
    b.writeTo(ch);
    assertEquals("abcdefg", drain(ch));
    b.rewind();
    assertFalse(b.writeTo(ch), "nothing kept to send again");
    assertNull(ch.readOutbound());
    assertTrue(b.untouched());
    b.release();
    assertFalse(ch.finishAndReleaseAll());
  }

  @Test
  void pendingBytesAreWhatNoUpstreamHasTakenYet() {
    ReplayBuffer b = new ReplayBuffer(true, 16);
    b.add(part("abc"));
    b.add(part("de"));
    assertEquals(5, b.pendingBytes(), "no upstream yet: all of it waits");
    EmbeddedChannel first = new EmbeddedChannel();
    b.writeTo(first);
    assertEquals(0, b.pendingBytes());
    b.add(part("f"));
    assertEquals(1, b.pendingBytes());
    b.rewind();
    assertEquals(6, b.pendingBytes(), "a retry waits to send everything kept");
    assertEquals("abcde", drain(first));
    b.release();
    assertEquals(0, b.pendingBytes());
    assertFalse(first.finishAndReleaseAll());
  }
}
