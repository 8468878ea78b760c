package dev.nodemesh.bpf.conntrack;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The ctnetlink codec against messages laid out as the kernel sends them (nlmsghdr in host order,
 * nested attributes, addresses and ports in network order); no socket.
 */
class CtNetlinkTest {
  private static final int AF_INET = 2;
  private static final int AF_INET6 = 10;

  private static byte[] attr(int type, byte[] payload) {
    int len = 4 + payload.length;
    ByteBuffer b = ByteBuffer.allocate(CtNetlink.align(len)).order(ByteOrder.nativeOrder());
    b.putShort((short) len);
    b.putShort((short) type);
    b.put(payload);
    return b.array();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  private static byte[] be16(int v) {
    return new byte[] {(byte) (v >> 8), (byte) v};
  }

  private static byte[] tuple(String src, String dst, int proto, int sport, int dport)
      throws Exception {
    byte[] s = InetAddress.getByName(src).getAddress();
    byte[] d = InetAddress.getByName(dst).getAddress();
    boolean v6 = s.length == 16;
    byte[] ip =
        attr(
            CtNetlink.CTA_TUPLE_IP | CtNetlink.NLA_F_NESTED,
            concat(
                attr(v6 ? CtNetlink.CTA_IP_V6_SRC : CtNetlink.CTA_IP_V4_SRC, s),
                attr(v6 ? CtNetlink.CTA_IP_V6_DST : CtNetlink.CTA_IP_V4_DST, d)));
    byte[] l4 =
        attr(
            CtNetlink.CTA_TUPLE_PROTO | CtNetlink.NLA_F_NESTED,
            concat(
                attr(CtNetlink.CTA_PROTO_NUM, new byte[] {(byte) proto}),
                attr(CtNetlink.CTA_PROTO_SRC_PORT, be16(sport)),
                attr(CtNetlink.CTA_PROTO_DST_PORT, be16(dport))));
    return concat(ip, l4);
  }

  /** One IPCTNL_MSG_CT_NEW message as a dump carries it (with a status attribute we ignore). */
  private static byte[] entry(int family, byte[] orig, byte[] reply, byte[] extra) {
    byte[] attrs =
        concat(
            attr(CtNetlink.CTA_TUPLE_ORIG | CtNetlink.NLA_F_NESTED, orig),
            attr(CtNetlink.CTA_TUPLE_REPLY | CtNetlink.NLA_F_NESTED, reply),
            attr(3, new byte[] {0, 0, 1, (byte) 0x8e}), // CTA_STATUS
            extra);
    return CtNetlink.message(0, CtNetlink.NLM_F_MULTI, 1, family, attrs);
  }

  private static byte[] control(int type, int errno) {
    ByteBuffer b = ByteBuffer.allocate(type == CtNetlink.NLMSG_ERROR ? 36 : 20);
    b.order(ByteOrder.nativeOrder());
    b.putInt(b.capacity()).putShort((short) type).putShort((short) 0).putInt(1).putInt(0);
    b.putInt(-errno);
    return b.array();
  }

  @Test
  void aDumpRequestAsksForEveryFamily() {
    ByteBuffer b = ByteBuffer.wrap(CtNetlink.dumpRequest(7)).order(ByteOrder.nativeOrder());
    assertEquals(20, b.capacity());
    assertEquals(20, b.getInt(0));
    assertEquals(0x0101, b.getShort(4)); // ctnetlink subsystem, IPCTNL_MSG_CT_GET
    assertEquals(0x301, b.getShort(6)); // NLM_F_REQUEST | NLM_F_DUMP
    assertEquals(7, b.getInt(8));
    assertEquals(0, b.get(16)); // AF_UNSPEC
  }

  @Test
  void entriesAreReadAndAnUntranslatedOneIsToldFromARedirectedOne() throws Exception {
    byte[] staleOrig = tuple("10.97.1.10", "10.97.0.10", 6, 40123, 80);
    byte[] stale =
        entry(AF_INET, staleOrig, tuple("10.97.0.10", "10.97.1.10", 6, 80, 40123), new byte[0]);
    byte[] redirected =
        entry(
            AF_INET,
            tuple("10.97.1.10", "10.97.0.10", 6, 40124, 80),
            tuple("127.0.0.1", "10.97.1.10", 6, 15001, 40124),
            new byte[0]);
    byte[] v6 =
        entry(
            AF_INET6,
            tuple("fd00:97::1", "fd00:97::10", 6, 5000, 80),
            tuple("fd00:97::10", "fd00:97::1", 6, 80, 5000),
            attr(CtNetlink.CTA_ZONE, be16(3)));
    byte[] datagram = concat(stale, redirected, v6);
    CtNetlink.Batch batch = CtNetlink.read(datagram, datagram.length);
    assertFalse(batch.done());
    assertEquals(3, batch.entries().size());

    CtNetlink.Entry a = batch.entries().get(0);
    assertEquals(AF_INET, a.family());
    assertEquals(
        new CtNetlink.Tuple(
            InetAddress.getByName("10.97.1.10"), InetAddress.getByName("10.97.0.10"), 6, 40123, 80),
        a.original());
    assertTrue(a.destinationUntranslated());
    assertFalse(batch.entries().get(1).destinationUntranslated());
    CtNetlink.Entry c = batch.entries().get(2);
    assertEquals(AF_INET6, c.family());
    assertEquals(InetAddress.getByName("fd00:97::10"), c.original().dst());
    assertTrue(c.destinationUntranslated());

    // The delete names the entry by its original tuple, byte for byte, in its family.
    byte[] del = CtNetlink.deleteRequest(a, 9);
    ByteBuffer d = ByteBuffer.wrap(del).order(ByteOrder.nativeOrder());
    assertEquals(del.length, d.getInt(0));
    assertEquals(0x0102, d.getShort(4)); // IPCTNL_MSG_CT_DELETE
    assertEquals(0x5, d.getShort(6)); // NLM_F_REQUEST | NLM_F_ACK
    assertEquals(9, d.getInt(8));
    assertEquals(AF_INET, d.get(16));
    assertArrayEquals(
        attr(CtNetlink.CTA_TUPLE_ORIG | CtNetlink.NLA_F_NESTED, staleOrig),
        Arrays.copyOfRange(del, 20, del.length));
    // A zoned entry's delete carries its zone too.
    byte[] delZoned = CtNetlink.deleteRequest(c, 10);
    assertArrayEquals(
        attr(CtNetlink.CTA_ZONE, be16(3)),
        Arrays.copyOfRange(delZoned, delZoned.length - 8, delZoned.length));
  }

  @Test
  void theEndOfADumpAndAcksAndErrorsAreRead() {
    byte[] done = control(CtNetlink.NLMSG_DONE, 0);
    CtNetlink.Batch end = CtNetlink.read(done, done.length);
    assertTrue(end.done());
    assertEquals(0, end.errno());
    byte[] ack = control(CtNetlink.NLMSG_ERROR, 0);
    assertEquals(0, CtNetlink.read(ack, ack.length).errno());
    byte[] enoent = control(CtNetlink.NLMSG_ERROR, 2);
    CtNetlink.Batch e = CtNetlink.read(enoent, enoent.length);
    assertTrue(e.done());
    assertEquals(2, e.errno());
  }

  @Test
  void malformedLengthsAreRefusedNotMisread() throws Exception {
    byte[] good =
        entry(
            AF_INET,
            tuple("10.0.0.1", "10.97.0.10", 6, 1, 80),
            tuple("10.97.0.10", "10.0.0.1", 6, 80, 1),
            new byte[0]);
    byte[] longMessage = good.clone();
    ByteBuffer.wrap(longMessage).order(ByteOrder.nativeOrder()).putInt(0, good.length + 4);
    assertThrows(IllegalArgumentException.class, () -> CtNetlink.read(longMessage, good.length));
    byte[] longAttr = good.clone();
    ByteBuffer.wrap(longAttr).order(ByteOrder.nativeOrder()).putShort(20, (short) 0x7ff0);
    assertThrows(IllegalArgumentException.class, () -> CtNetlink.read(longAttr, longAttr.length));
  }

  @Test
  void theStatisticsRequestAndItsEntryCount() {
    ByteBuffer req = ByteBuffer.wrap(CtNetlink.statsRequest(9)).order(ByteOrder.nativeOrder());
    assertEquals(20, req.getInt(0));
    assertEquals((1 << 8) | 5, req.getShort(4)); // ctnetlink, IPCTNL_MSG_CT_GET_STATS
    assertEquals(1, req.getShort(6)); // NLM_F_REQUEST only: one answer, no ack after it
    assertEquals(9, req.getInt(8));

    byte[] count = ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt(3).array();
    byte[] max = ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt(65536).array();
    byte[] msg =
        CtNetlink.message(5, 0, 9, 0, concat(attr(2, max), attr(1, count))); // max first: by type
    assertEquals(3, CtNetlink.entryCount(msg, msg.length));
    byte[] none = CtNetlink.message(5, 0, 9, 0, attr(1, new byte[4]));
    assertEquals(0, CtNetlink.entryCount(none, none.length));
    byte[] error = error(-95); // EOPNOTSUPP: unknown, the caller dumps
    assertEquals(-1, CtNetlink.entryCount(error, error.length));
    byte[] noCount = CtNetlink.message(5, 0, 9, 0, attr(2, max));
    assertThrows(
        IllegalArgumentException.class, () -> CtNetlink.entryCount(noCount, noCount.length));
    byte[] other = CtNetlink.message(0, 0, 9, 0, attr(1, count));
    assertThrows(IllegalArgumentException.class, () -> CtNetlink.entryCount(other, other.length));
  }

  /** An NLMSG_ERROR message carrying {@code errno} (negative), as the kernel answers a failure. */
  private static byte[] error(int errno) {
    ByteBuffer b = ByteBuffer.allocate(36).order(ByteOrder.nativeOrder());
    b.putInt(36).putShort((short) 2).putShort((short) 0).putInt(9).putInt(0).putInt(errno);
    return b.array();
  }
}
