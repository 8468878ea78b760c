package dev.nodemesh.bpf.route;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The rtnetlink messages nodemesh sends (linux/rtnetlink.h, linux/fib_rules.h): add or delete one
 * policy-routing rule ({@code ip rule add fwmark M [oif lo] lookup T pref P}) and add or delete one
 * route that delivers everything locally ({@code ip route replace local default dev lo table T}),
 * and the kernel's acknowledgement. Pure byte work, no socket, so it is tested without root.
 *
 * <p>The messages are the ones iproute2 sends for those commands: a table id above 255 goes in the
 * {@code *_TABLE} attribute with the header's table field unspecified; a rule's mark without a mask
 * gets the kernel's all-ones mask (so {@code ip rule show} prints it as iproute2 would have added
 * it); a rule add carries {@code NLM_F_EXCL}, so an identical rule answers {@code EEXIST} instead
 * of being added twice; a route add carries {@code NLM_F_REPLACE}. Limits: only these two shapes.
 */
public final class RtNetlink {
  static final int NLMSG_HDRLEN = 16;
  static final int NLMSG_ERROR = 2;
  static final int NLM_F_REQUEST = 0x1;
  static final int NLM_F_ACK = 0x4;
  static final int NLM_F_REPLACE = 0x100;
  static final int NLM_F_EXCL = 0x200;
  static final int NLM_F_CREATE = 0x400;
  static final int RTM_NEWROUTE = 24;
  static final int RTM_DELROUTE = 25;
  static final int RTM_NEWRULE = 32;
  static final int RTM_DELRULE = 33;

  /** Both {@code struct rtmsg} and {@code struct fib_rule_hdr} are 12 bytes. */
  static final int RT_HDRLEN = 12;

  static final int RTA_OIF = 4;
  static final int RTA_TABLE = 15;
  static final int FRA_PRIORITY = 6;
  static final int FRA_FWMARK = 10;
  static final int FRA_TABLE = 15;
  static final int FRA_OIFNAME = 17;
  static final int RT_TABLE_UNSPEC = 0;
  static final int RTPROT_BOOT = 3;
  static final int RT_SCOPE_HOST = 254;
  static final int RTN_LOCAL = 2;
  static final int FR_ACT_TO_TBL = 1;

  public static final int AF_INET = 2;
  public static final int AF_INET6 = 10;

  /** The loopback device's index, the same in every network namespace. */
  public static final int LOOPBACK_IFINDEX = 1;

  private RtNetlink() {}

  /** {@code ip rule add fwmark mark lookup table pref priority} (EEXIST when it is there). */
  public static byte[] addRule(int family, int mark, int table, int priority, int seq) {
    return rule(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, mark, table, priority, false, seq);
  }

  /** {@code ip rule del fwmark mark lookup table pref priority} (ENOENT when it is not there). */
  public static byte[] deleteRule(int family, int mark, int table, int priority, int seq) {
    return rule(RTM_DELRULE, 0, family, mark, table, priority, false, seq);
  }

  /**
   * {@code ip rule add fwmark mark oif lo lookup table pref priority}: only sockets bound to the
   * loopback device (EEXIST when it is there).
   */
  public static byte[] addLoopbackRule(int family, int mark, int table, int priority, int seq) {
    return rule(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, mark, table, priority, true, seq);
  }

  /** {@code ip rule del fwmark mark oif lo lookup table pref priority} (ENOENT when not there). */
  public static byte[] deleteLoopbackRule(int family, int mark, int table, int priority, int seq) {
    return rule(RTM_DELRULE, 0, family, mark, table, priority, true, seq);
  }

  /** {@code ip route replace local default dev lo table table}. */
  public static byte[] replaceLocalDefault(int family, int table, int seq) {
    return localDefault(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, table, seq);
  }

  /** {@code ip route del local default dev lo table table} (ESRCH when it is not there). */
  public static byte[] deleteLocalDefault(int family, int table, int seq) {
    return localDefault(RTM_DELROUTE, 0, family, table, seq);
  }

  private static byte[] rule(
      int type,
      int flags,
      int family,
      int mark,
      int table,
      int priority,
      boolean loopbackOif,
      int seq) {
    ByteBuffer b = header(type, flags, seq, (loopbackOif ? 4 : 3) * 8);
    b.put((byte) family);
    b.put((byte) 0); // dst_len
    b.put((byte) 0); // src_len
    b.put((byte) 0); // tos
    b.put((byte) RT_TABLE_UNSPEC); // the table is FRA_TABLE: ids above 255 fit only there
    b.put((byte) 0);
    b.put((byte) 0);
    b.put((byte) FR_ACT_TO_TBL);
    b.putInt(0); // flags
    u32(b, FRA_TABLE, table);
    u32(b, FRA_PRIORITY, priority);
    u32(b, FRA_FWMARK, mark);
    if (loopbackOif) {
      // The device by name, NUL-terminated as iproute2 sends it: "lo\0" (7 bytes with the
      // attribute header), padded to 8.
      b.putShort((short) 7);
      b.putShort((short) FRA_OIFNAME);
      b.put((byte) 'l').put((byte) 'o').put((byte) 0).put((byte) 0);
    }
    return b.array();
  }

  private static byte[] localDefault(int type, int flags, int family, int table, int seq) {
    ByteBuffer b = header(type, flags, seq, 2 * 8);
    b.put((byte) family);
    b.put((byte) 0); // dst_len 0: default
    b.put((byte) 0); // src_len
    b.put((byte) 0); // tos
    b.put((byte) RT_TABLE_UNSPEC); // RTA_TABLE below
    b.put((byte) RTPROT_BOOT);
    b.put((byte) RT_SCOPE_HOST);
    b.put((byte) RTN_LOCAL);
    b.putInt(0); // flags
    u32(b, RTA_TABLE, table);
    u32(b, RTA_OIF, LOOPBACK_IFINDEX);
    return b.array();
  }

  private static ByteBuffer header(int type, int flags, int seq, int attrBytes) {
    int len = NLMSG_HDRLEN + RT_HDRLEN + attrBytes;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    b.putInt(len);
    b.putShort((short) type);
    b.putShort((short) (NLM_F_REQUEST | NLM_F_ACK | flags));
    b.putInt(seq);
    b.putInt(0); // port id: the kernel fills in ours
    return b;
  }

  private static void u32(ByteBuffer b, int type, int value) {
    b.putShort((short) 8);
    b.putShort((short) type);
    b.putInt(value);
  }

  /**
   * The errno of the acknowledgement for request {@code seq} in {@code buf[0, len)}: 0 for success,
   * else the positive errno; -1 when the datagram holds no acknowledgement of that request (read
   * again). Malformed input is an {@link IllegalArgumentException}.
   */
  public static int ack(byte[] buf, int len, int seq) {
    ByteBuffer b = ByteBuffer.wrap(buf, 0, len).order(ByteOrder.nativeOrder());
    int off = 0;
    while (off + NLMSG_HDRLEN <= len) {
      int msgLen = b.getInt(off);
      int type = b.getShort(off + 4) & 0xffff;
      if (msgLen < NLMSG_HDRLEN || off + msgLen > len) {
        throw new IllegalArgumentException("netlink message of length " + msgLen + " at " + off);
      }
      if (type == NLMSG_ERROR && b.getInt(off + 8) == seq) {
        if (msgLen < NLMSG_HDRLEN + 4) {
          throw new IllegalArgumentException("short netlink error message");
        }
        return -b.getInt(off + NLMSG_HDRLEN);
      }
      off += (msgLen + 3) & ~3;
    }
    return -1;
  }
}
