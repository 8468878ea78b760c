package dev.nodemesh.bpf.route;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * The rtnetlink requests laid out as iproute2 sends them for {@code ip rule add fwmark 0x53a lookup
 * 1338 pref 32750} and {@code ip route replace local default dev lo table 1338} (nlmsghdr and
 * attributes in host order), and acknowledgements as the kernel sends them; no socket.
 */
class RtNetlinkTest {
  private static ByteBuffer wrap(byte[] b) {
    return ByteBuffer.wrap(b).order(ByteOrder.nativeOrder());
  }

  @Test
  void aRuleAddIsExclusiveAndCarriesTableMarkAndPriorityAsAttributes() {
    ByteBuffer b = wrap(RtNetlink.addRule(RtNetlink.AF_INET, 0x53a, 1338, 32750, 7));
    assertEquals(16 + 12 + 24, b.capacity());
    assertEquals(52, b.getInt(0)); // nlmsg_len
    assertEquals(RtNetlink.RTM_NEWRULE, b.getShort(4));
    assertEquals(0x1 | 0x4 | 0x400 | 0x200, b.getShort(6)); // REQUEST|ACK|CREATE|EXCL
    assertEquals(7, b.getInt(8)); // seq
    assertEquals(RtNetlink.AF_INET, b.get(16)); // fib_rule_hdr.family
    assertEquals(0, b.get(20)); // table: in FRA_TABLE, a 1338 does not fit a byte
    assertEquals(RtNetlink.FR_ACT_TO_TBL, b.get(23)); // action
    assertAttribute(b, 28, RtNetlink.FRA_TABLE, 1338);
    assertAttribute(b, 36, RtNetlink.FRA_PRIORITY, 32750);
    assertAttribute(b, 44, RtNetlink.FRA_FWMARK, 0x53a);

    ByteBuffer d = wrap(RtNetlink.deleteRule(RtNetlink.AF_INET6, 0x53a, 1338, 32750, 8));
    assertEquals(RtNetlink.RTM_DELRULE, d.getShort(4));
    assertEquals(0x1 | 0x4, d.getShort(6)); // REQUEST|ACK: a delete names the rule, no create
    assertEquals(RtNetlink.AF_INET6, d.get(16));
    assertAttribute(d, 44, RtNetlink.FRA_FWMARK, 0x53a);
  }

  @Test
  void aLoopbackRuleAddsTheOutputDeviceByNameAfterTheMark() {
    ByteBuffer b = wrap(RtNetlink.addLoopbackRule(RtNetlink.AF_INET6, 0x539, 1338, 32750, 9));
    assertEquals(16 + 12 + 32, b.capacity());
    assertEquals(60, b.getInt(0));
    assertEquals(RtNetlink.RTM_NEWRULE, b.getShort(4));
    assertEquals(0x1 | 0x4 | 0x400 | 0x200, b.getShort(6));
    assertEquals(RtNetlink.AF_INET6, b.get(16));
    assertAttribute(b, 28, RtNetlink.FRA_TABLE, 1338);
    assertAttribute(b, 36, RtNetlink.FRA_PRIORITY, 32750);
    assertAttribute(b, 44, RtNetlink.FRA_FWMARK, 0x539);
    assertEquals(7, b.getShort(52)); // nla_len: header and "lo\0", the padding not counted
    assertEquals(RtNetlink.FRA_OIFNAME, b.getShort(54));
    assertEquals('l', b.get(56));
    assertEquals('o', b.get(57));
    assertEquals(0, b.get(58));

    ByteBuffer d = wrap(RtNetlink.deleteLoopbackRule(RtNetlink.AF_INET, 0x539, 1338, 32750, 2));
    assertEquals(60, d.getInt(0));
    assertEquals(RtNetlink.RTM_DELRULE, d.getShort(4));
    assertEquals(0x1 | 0x4, d.getShort(6));
    assertEquals(RtNetlink.FRA_OIFNAME, d.getShort(54));
  }

  @Test
  void theLocalDefaultRouteGoesOverLoopbackInItsOwnTable() {
    ByteBuffer b = wrap(RtNetlink.replaceLocalDefault(RtNetlink.AF_INET6, 1338, 3));
    assertEquals(16 + 12 + 16, b.getInt(0));
    assertEquals(RtNetlink.RTM_NEWROUTE, b.getShort(4));
    assertEquals(0x1 | 0x4 | 0x400 | 0x100, b.getShort(6)); // REQUEST|ACK|CREATE|REPLACE
    assertEquals(RtNetlink.AF_INET6, b.get(16)); // rtmsg.family
    assertEquals(0, b.get(17)); // dst_len 0: default
    assertEquals(0, b.get(20)); // table: RTA_TABLE
    assertEquals(RtNetlink.RTPROT_BOOT, b.get(21));
    assertEquals((byte) RtNetlink.RT_SCOPE_HOST, b.get(22));
    assertEquals(RtNetlink.RTN_LOCAL, b.get(23));
    assertAttribute(b, 28, RtNetlink.RTA_TABLE, 1338);
    assertAttribute(b, 36, RtNetlink.RTA_OIF, RtNetlink.LOOPBACK_IFINDEX);

    ByteBuffer d = wrap(RtNetlink.deleteLocalDefault(RtNetlink.AF_INET, 1338, 4));
    assertEquals(RtNetlink.RTM_DELROUTE, d.getShort(4));
    assertEquals(0x1 | 0x4, d.getShort(6));
  }

  @Test
  void anAckIsFoundByItsSequenceNumber() {
    assertEquals(0, RtNetlink.ack(ackFor(5, 0), 36, 5));
    assertEquals(17, RtNetlink.ack(ackFor(5, -17), 36, 5)); // EEXIST
    assertEquals(-1, RtNetlink.ack(ackFor(4, 0), 36, 5)); // someone else's: read on
    assertEquals(-1, RtNetlink.ack(new byte[0], 0, 5));
    byte[] broken = ackFor(5, 0);
    wrap(broken).putInt(0, 99); // longer than the datagram
    assertThrows(IllegalArgumentException.class, () -> RtNetlink.ack(broken, 36, 5));
  }

  /** NLMSG_ERROR with {@code error} (0: an ack) and the request's header echoed. */
  private static byte[] ackFor(int seq, int error) {
    ByteBuffer b = ByteBuffer.allocate(36).order(ByteOrder.nativeOrder());
    b.putInt(36).putShort((short) RtNetlink.NLMSG_ERROR).putShort((short) 0).putInt(seq).putInt(1);
    b.putInt(error);
    b.putInt(16).putShort((short) RtNetlink.RTM_NEWRULE).putShort((short) 5).putInt(seq).putInt(0);
    return b.array();
  }

  private static void assertAttribute(ByteBuffer b, int at, int type, int value) {
    assertEquals(8, b.getShort(at), "attribute length at " + at);
    assertEquals(type, b.getShort(at + 2), "attribute type at " + at);
    assertEquals(value, b.getInt(at + 4), "attribute value at " + at);
  }
}
