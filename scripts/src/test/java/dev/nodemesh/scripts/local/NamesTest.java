package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NamesTest {
  @Test
  void shortNamesAreKeptReadable() {
    assertEquals("nm1a2b-echo-1", Names.podNetns("nm1a2b", "default", "echo-1"));
    assertEquals("nm1a2b-shop-cart", Names.podNetns("nm1a2b", "shop", "cart"));
    assertEquals("nm1a2b-node", Names.nodeNetns("nm1a2b"));
    assertEquals("nm1a2bbr", Names.bridge("nm1a2b"));
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
  void vethNamesFitInFifteenBytesForTheLongestPrefix() {
    for (String prefix : new String[] {"nm", "nm1a2b", "abcdefgh"}) {
      String veth = Names.podVeth(prefix, "default", "a-very-long-pod-name-indeed-" + prefix);
      assertTrue(veth.length() <= Names.MAX_LINK, veth);
      assertTrue(veth.startsWith(prefix + "v"), veth);
      assertTrue(Names.bridge(prefix).length() <= Names.MAX_LINK);
    }
    assertNotEquals(
        Names.podVeth("nm1a2b", "default", "echo-1"), Names.podVeth("nm1a2b", "default", "echo-2"));
    assertEquals(
        Names.podVeth("nm1a2b", "default", "echo-1"), Names.podVeth("nm1a2b", "default", "echo-1"));
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
