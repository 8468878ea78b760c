package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class NamesTest {
  @Test
  void shortNamesAreKeptReadable() {
    assertEquals("nm1a2b-echo-1", Names.podNetns("nm1a2b", "default", "echo-1"));
    assertEquals("nm1a2b-shop-cart", Names.podNetns("nm1a2b", "shop", "cart"));
    assertEquals("nm1a2b.node-1", Names.nodeNetns("nm1a2b", "node-1"));
    assertEquals("nm1a2bbr0", Names.bridge("nm1a2b", 0));
    assertEquals("nm1a2b-node-1", Names.network("nm1a2b", "node-1"));
    // A pod named like a node never shares its namespace.
    assertNotEquals(
        Names.nodeNetns("nm1a2b", "node-1"), Names.podNetns("nm1a2b", "default", "node-1"));
  }

  @Test
  void longPodNamesAreCutWithAHashAndStayDistinct() {
    String a = "a".repeat(60) + "-one";
    String b = "a".repeat(60) + "-two";
    String na = Names.podNetns("nm1a2b", "default", a);
    String nb = Names.podNetns("nm1a2b", "default", b);
    assertEquals(Names.MAX_NETNS, na.length());
    assertTrue(na.startsWith("nm1a2b-aaaa"), na);
    assertNotEquals(na, nb);
  }

  @Test
  void oddCharactersAreReplacedAndHashed() {
    String n = Names.podNetns("nm1a2b", "default", "Echo.V2");
    assertTrue(n.matches("nm1a2b-echo-v2-[0-9a-f]{6}"), n);
  }

  @Test
  void linkNamesFitInFifteenBytesForTheLongestPrefix() {
    for (String prefix : new String[] {"nm", "nm1a2b", "abcdefgh"}) {
      for (String link :
          List.of(
              Names.bridge(prefix, 999),
              Names.underlayLink(prefix, 999),
              Names.underlayPort(prefix, 999),
              Names.underlayBridge(prefix))) {
        assertTrue(link.length() <= Names.MAX_LINK, link);
        assertTrue(link.startsWith(prefix), link);
      }
    }
  }

  @Test
  void oddNodeNamesAreCleanedAndHashed() {
    String n = Names.nodeNetns("nm1a2b", "Worker_1");
    assertTrue(n.matches("nm1a2b\\.worker-1-[0-9a-f]{6}"), n);
    assertTrue(Names.nodeNetns("nm1a2b", "n".repeat(80)).length() <= Names.MAX_NETNS);
  }

  @Test
  void prefixesThatWouldBreakNamesAreRejected() {
    assertEquals("nm1a2b", Names.checkPrefix("nm1a2b"));
    assertTrue(Names.checkPrefix(Names.randomPrefix()).matches("nm[0-9a-f]{4}"));
    for (String bad : new String[] {"", "n", "1abc", "nm-1", "NMAB", "abcdefghi"}) {
      assertThrows(IllegalArgumentException.class, () -> Names.checkPrefix(bad), bad);
    }
  }
}
