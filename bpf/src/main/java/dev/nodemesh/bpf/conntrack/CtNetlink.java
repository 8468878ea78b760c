package dev.nodemesh.bpf.conntrack;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The ctnetlink messages nodemesh sends and reads (linux/netfilter/nfnetlink_conntrack.h): a dump
 * request of the conntrack table, the entries of a dump, and a delete request for one entry. Pure
 * byte work, no socket, so it is tested without root.
 *
 * <p>Limits: reads only the original and reply tuples and the zone of an entry, which is all a
 * delete needs; a delete names the entry by its original tuple as the kernel sent it (copied byte
 * for byte), plus its zone.
 */
public final class CtNetlink {
  static final int NLMSG_HDRLEN = 16;
  static final int NFGENMSG_LEN = 4;
  static final int NLMSG_ERROR = 2;
  static final int NLMSG_DONE = 3;
  static final int NLM_F_REQUEST = 0x1;
  static final int NLM_F_MULTI = 0x2;
  static final int NLM_F_ACK = 0x4;
  static final int NLM_F_DUMP = 0x300;
  static final int NFNL_SUBSYS_CTNETLINK = 1;
  static final int IPCTNL_MSG_CT_NEW = 0;
  static final int IPCTNL_MSG_CT_GET = 1;
  static final int IPCTNL_MSG_CT_DELETE = 2;
  static final int IPCTNL_MSG_CT_GET_STATS = 5;
  static final int CTA_STATS_GLOBAL_ENTRIES = 1;
  static final int CTA_TUPLE_ORIG = 1;
  static final int CTA_TUPLE_REPLY = 2;
  static final int CTA_ZONE = 18;
  static final int CTA_TUPLE_IP = 1;
  static final int CTA_TUPLE_PROTO = 2;
  static final int CTA_IP_V4_SRC = 1;
  static final int CTA_IP_V4_DST = 2;
  static final int CTA_IP_V6_SRC = 3;
  static final int CTA_IP_V6_DST = 4;
  static final int CTA_PROTO_NUM = 1;
  static final int CTA_PROTO_SRC_PORT = 2;
  static final int CTA_PROTO_DST_PORT = 3;
  static final int NLA_F_NESTED = 0x8000;
  static final int NLA_TYPE_MASK = 0x3fff;
  public static final int AF_UNSPEC = 0;
  public static final int IPPROTO_TCP = 6;

  private CtNetlink() {}

  /** One direction of a connection: addresses, layer-4 protocol and ports. */
  public record Tuple(InetAddress src, InetAddress dst, int protocol, int srcPort, int dstPort) {}

  /**
   * One conntrack entry of a dump: its family (AF_INET or AF_INET6, as the kernel answered; a
   * delete must name it again), both tuples, and the raw {@code CTA_TUPLE_ORIG} and {@code
   * CTA_ZONE} attributes a delete sends back byte for byte.
   */
  public static final class Entry {
    private final int family;
    private final Tuple original;
    private final Tuple reply;
    private final byte[] origAttr;
    private final byte @Nullable [] zoneAttr;

    Entry(int family, Tuple original, Tuple reply, byte[] origAttr, byte @Nullable [] zoneAttr) {
      this.family = family;
      this.original = original;
      this.reply = reply;
      this.origAttr = origAttr.clone();
      this.zoneAttr = zoneAttr == null ? null : zoneAttr.clone();
    }

    public int family() {
      return family;
    }

    public Tuple original() {
      return original;
    }

    public Tuple reply() {
      return reply;
    }

    /**
     * Whether no NAT changed the destination: the reply comes from the original destination. An
     * entry of a connection that went out before capture looks so; one made through a REDIRECT has
     * the proxy's listener as reply source.
     */
    public boolean destinationUntranslated() {
      return reply.src().equals(original.dst()) && reply.srcPort() == original.dstPort();
    }

    @Override
    public String toString() {
      return "conntrack " + original + " reply " + reply;
    }
  }

  /** A request for every entry of the table, of every family. */
  public static byte[] dumpRequest(int seq) {
    return message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, AF_UNSPEC, new byte[0]);
  }

  /**
   * A request for the namespace's conntrack statistics: how many entries it has now ({@code
   * CTA_STATS_GLOBAL_ENTRIES}, "global" meaning all CPUs of this namespace, not all namespaces).
   * Answered with one message, or an error message.
   */
  public static byte[] statsRequest(int seq) {
    return message(IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST, seq, AF_UNSPEC, new byte[0]);
  }

  /**
   * The entry count in the answer to {@link #statsRequest} in {@code buf[0, len)}; -1 when the
   * kernel answered with an error (a kernel without the statistics: count unknown). Malformed input
   * is an {@link IllegalArgumentException}.
   */
  public static long entryCount(byte[] buf, int len) {
    ByteBuffer b = ByteBuffer.wrap(buf, 0, len).order(ByteOrder.nativeOrder());
    if (len < NLMSG_HDRLEN) {
      throw new IllegalArgumentException("short netlink message: " + len + " bytes");
    }
    int msgLen = b.getInt(0);
    int type = b.getShort(4) & 0xffff;
    if (msgLen < NLMSG_HDRLEN || msgLen > len) {
      throw new IllegalArgumentException("netlink message of length " + msgLen);
    }
    if (type == NLMSG_ERROR) {
      return -1;
    }
    if (type != ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS)) {
      throw new IllegalArgumentException("not a conntrack statistics message: type " + type);
    }
    for (int a = NLMSG_HDRLEN + NFGENMSG_LEN; a + 4 <= msgLen; ) {
      int attrLen = b.getShort(a) & 0xffff;
      int attrType = b.getShort(a + 2) & NLA_TYPE_MASK;
      if (attrLen < 4 || a + attrLen > msgLen) {
        throw new IllegalArgumentException("netlink attribute of length " + attrLen + " at " + a);
      }
      if (attrType == CTA_STATS_GLOBAL_ENTRIES && attrLen >= 8) {
        return Integer.toUnsignedLong(b.order(ByteOrder.BIG_ENDIAN).getInt(a + 4));
      }
      a += align(attrLen);
    }
    throw new IllegalArgumentException("conntrack statistics without an entry count");
  }

  /** A request to delete {@code entry}, answered with an ack (an error message with errno 0). */
  public static byte[] deleteRequest(Entry entry, int seq) {
    ByteArrayOutputStream attrs = new ByteArrayOutputStream();
    attrs.writeBytes(entry.origAttr);
    byte[] zone = entry.zoneAttr;
    if (zone != null) {
      attrs.writeBytes(zone);
    }
    return message(
        IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, entry.family(), attrs.toByteArray());
  }

  static byte[] message(int msgType, int flags, int seq, int family, byte[] attrs) {
    int len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.length;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    b.putInt(len);
    b.putShort((short) ((NFNL_SUBSYS_CTNETLINK << 8) | msgType));
    b.putShort((short) flags);
    b.putInt(seq);
    b.putInt(0); // port id: the kernel fills in ours
    b.put((byte) family);
    b.put((byte) 0); // NFNETLINK_V0
    b.putShort((short) 0); // res_id, big-endian zero
    b.put(attrs);
    return b.array();
  }

  /** What one received datagram held. */
  public record Batch(List<Entry> entries, boolean done, int errno) {}

  /**
   * Reads the netlink messages in {@code buf[0, len)}: conntrack entries, the end of a dump ({@code
   * done}), an error or ack ({@code errno}: 0 for an ack, else the positive errno, and {@code
   * done}). Malformed input is an {@link IllegalArgumentException}, never a wrong entry.
   */
  public static Batch read(byte[] buf, int len) {
    ByteBuffer b = ByteBuffer.wrap(buf, 0, len).order(ByteOrder.nativeOrder());
    List<Entry> entries = new ArrayList<>();
    int off = 0;
    while (off + NLMSG_HDRLEN <= len) {
      int msgLen = b.getInt(off);
      int type = b.getShort(off + 4) & 0xffff;
      if (msgLen < NLMSG_HDRLEN || off + msgLen > len) {
        throw new IllegalArgumentException("netlink message of length " + msgLen + " at " + off);
      }
      if (type == NLMSG_DONE) {
        return new Batch(entries, true, 0);
      }
      if (type == NLMSG_ERROR) {
        if (msgLen < NLMSG_HDRLEN + 4) {
          throw new IllegalArgumentException("short netlink error message");
        }
        return new Batch(entries, true, -b.getInt(off + NLMSG_HDRLEN));
      }
      if (type == ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW)
          && msgLen >= NLMSG_HDRLEN + NFGENMSG_LEN) {
        Entry e = entry(b, off, msgLen);
        if (e != null) {
          entries.add(e);
        }
      }
      off += align(msgLen);
    }
    return new Batch(entries, false, 0);
  }

  private static @Nullable Entry entry(ByteBuffer b, int off, int msgLen) {
    int family = b.get(off + NLMSG_HDRLEN) & 0xff;
    int end = off + msgLen;
    Tuple orig = null;
    Tuple reply = null;
    byte[] origAttr = null;
    byte[] zoneAttr = null;
    for (int a = off + NLMSG_HDRLEN + NFGENMSG_LEN; a + 4 <= end; ) {
      int attrLen = b.getShort(a) & 0xffff;
      int attrType = b.getShort(a + 2) & NLA_TYPE_MASK;
      if (attrLen < 4 || a + attrLen > end) {
        throw new IllegalArgumentException("netlink attribute of length " + attrLen + " at " + a);
      }
      if (attrType == CTA_TUPLE_ORIG) {
        orig = tuple(b, a + 4, a + attrLen);
        origAttr = copy(b, a, align(attrLen), end);
      } else if (attrType == CTA_TUPLE_REPLY) {
        reply = tuple(b, a + 4, a + attrLen);
      } else if (attrType == CTA_ZONE) {
        zoneAttr = copy(b, a, align(attrLen), end);
      }
      a += align(attrLen);
    }
    if (orig == null || reply == null || origAttr == null) {
      return null; // not an entry a delete can name (never seen from a dump)
    }
    return new Entry(family, orig, reply, origAttr, zoneAttr);
  }

  /** Bytes [from, from + n) with the padding zeroed past the end of the message, if any. */
  private static byte[] copy(ByteBuffer b, int from, int n, int end) {
    byte[] out = new byte[n];
    for (int i = 0; i < n && from + i < end; i++) {
      out[i] = b.get(from + i);
    }
    return out;
  }

  private static @Nullable Tuple tuple(ByteBuffer b, int from, int end) {
    InetAddress src = null;
    InetAddress dst = null;
    int proto = -1;
    int sport = 0;
    int dport = 0;
    for (int a = from; a + 4 <= end; ) {
      int len = b.getShort(a) & 0xffff;
      int type = b.getShort(a + 2) & NLA_TYPE_MASK;
      if (len < 4 || a + len > end) {
        throw new IllegalArgumentException("tuple attribute of length " + len + " at " + a);
      }
      if (type == CTA_TUPLE_IP) {
        for (int i = a + 4; i + 4 <= a + len; ) {
          int l = b.getShort(i) & 0xffff;
          int t = b.getShort(i + 2) & NLA_TYPE_MASK;
          if (l < 4 || i + l > a + len) {
            throw new IllegalArgumentException("address attribute of length " + l + " at " + i);
          }
          if (t == CTA_IP_V4_SRC || t == CTA_IP_V6_SRC) {
            src = address(b, i + 4, l - 4);
          } else if (t == CTA_IP_V4_DST || t == CTA_IP_V6_DST) {
            dst = address(b, i + 4, l - 4);
          }
          i += align(l);
        }
      } else if (type == CTA_TUPLE_PROTO) {
        for (int i = a + 4; i + 4 <= a + len; ) {
          int l = b.getShort(i) & 0xffff;
          int t = b.getShort(i + 2) & NLA_TYPE_MASK;
          if (l < 4 || i + l > a + len) {
            throw new IllegalArgumentException("protocol attribute of length " + l + " at " + i);
          }
          if (t == CTA_PROTO_NUM && l >= 5) {
            proto = b.get(i + 4) & 0xff;
          } else if (t == CTA_PROTO_SRC_PORT && l >= 6) {
            sport = Short.toUnsignedInt(b.order(ByteOrder.BIG_ENDIAN).getShort(i + 4));
            b.order(ByteOrder.nativeOrder());
          } else if (t == CTA_PROTO_DST_PORT && l >= 6) {
            dport = Short.toUnsignedInt(b.order(ByteOrder.BIG_ENDIAN).getShort(i + 4));
            b.order(ByteOrder.nativeOrder());
          }
          i += align(l);
        }
      }
      a += align(len);
    }
    if (src == null || dst == null || proto < 0) {
      return null;
    }
    return new Tuple(src, dst, proto, sport, dport);
  }

  private static InetAddress address(ByteBuffer b, int from, int n) {
    if (n != 4 && n != 16) {
      throw new IllegalArgumentException("an address of " + n + " bytes");
    }
    byte[] ip = new byte[n];
    for (int i = 0; i < n; i++) {
      ip[i] = b.get(from + i);
    }
    try {
      return InetAddress.getByAddress(ip);
    } catch (UnknownHostException e) {
      throw new IllegalStateException("4 or 16 bytes is always an address", e);
    }
  }

  static int align(int n) {
    return (n + 3) & ~3;
  }
}
