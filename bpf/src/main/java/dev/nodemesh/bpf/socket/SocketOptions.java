package dev.nodemesh.bpf.socket;

import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.ffi.NativeException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.Arrays;

/**
 * Socket options the proxy needs that Java and Netty do not expose: the original destination of a
 * redirected connection ({@code SO_ORIGINAL_DST}), the socket mark that exempts the proxy's own
 * sockets from the redirect rules, and the socket and netns cookies.
 */
public final class SocketOptions {
  private static final int AF_INET = 2;
  private static final int AF_INET6 = 10;
  private static final int IPV6_V6ONLY = 26;
  private static final int IP_TRANSPARENT = 19;
  private static final int IP_BIND_ADDRESS_NO_PORT = 24;
  private static final int IPV6_TRANSPARENT = 75;
  private static final int SO_BINDTOIFINDEX = 62;
  private static final int LOOPBACK_IFINDEX = 1;

  private SocketOptions() {}

  /**
   * Where the peer meant to connect before iptables REDIRECT (or the eBPF getsockopt program)
   * changed it: {@code SO_ORIGINAL_DST} at {@code SOL_IP}, then {@code IP6T_SO_ORIGINAL_DST} at
   * {@code SOL_IPV6}.
   */
  public static InetSocketAddress originalDestination(int fd) throws NativeException {
    return originalDestination(fd, false);
  }

  /**
   * {@link #originalDestination(int)} asking the family of the accepted connection first ({@code
   * ipv6}: it arrived over native IPv6, e.g. on [::1]:15001), then the other one. A failure reports
   * the first family's error.
   */
  public static InetSocketAddress originalDestination(int fd, boolean ipv6) throws NativeException {
    NativeException first;
    try {
      return ipv6 ? original6(fd) : original4(fd);
    } catch (NativeException e) {
      first = e;
    }
    try {
      return ipv6 ? original4(fd) : original6(fd);
    } catch (NativeException e) {
      first.addSuppressed(e);
      throw first;
    }
  }

  private static InetSocketAddress original4(int fd) throws NativeException {
    return parseSockaddr(
        Native.getsockopt(fd, Native.SOL_IP, Native.SO_ORIGINAL_DST, 16, "SO_ORIGINAL_DST"));
  }

  private static InetSocketAddress original6(int fd) throws NativeException {
    return parseSockaddr(
        Native.getsockopt(fd, Native.SOL_IPV6, Native.SO_ORIGINAL_DST, 28, "IP6T_SO_ORIGINAL_DST"));
  }

  /** Decodes a {@code sockaddr_in} or {@code sockaddr_in6} (family in host order, port big). */
  public static InetSocketAddress parseSockaddr(byte[] sa) {
    if (sa.length < 8) {
      throw new IllegalArgumentException("sockaddr too short: " + sa.length + " bytes");
    }
    int family = (sa[0] & 0xff) | (sa[1] & 0xff) << 8;
    int port = (sa[2] & 0xff) << 8 | (sa[3] & 0xff);
    try {
      if (family == AF_INET) {
        return new InetSocketAddress(InetAddress.getByAddress(Arrays.copyOfRange(sa, 4, 8)), port);
      }
      if (family == AF_INET6 && sa.length >= 24) {
        return new InetSocketAddress(InetAddress.getByAddress(Arrays.copyOfRange(sa, 8, 24)), port);
      }
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("bad address in sockaddr", e);
    }
    throw new IllegalArgumentException("unsupported address family " + family);
  }

  /** IPV6_V6ONLY on: an AF_INET6 socket that neither accepts nor sends IPv4 (v4-mapped). */
  public static void setIpv6Only(int fd) throws NativeException {
    Native.setsockoptInt(fd, Native.SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  }

  /**
   * Lets a socket bind an address that is not local to its namespace ({@code IP_TRANSPARENT}, and
   * {@code IPV6_TRANSPARENT} for an IPv6 socket; needs CAP_NET_ADMIN), with the port picked at
   * connect time ({@code IP_BIND_ADDRESS_NO_PORT}), so the proxy can connect to an app from the
   * caller's address and a bind to port 0 does not reserve a port for every destination.
   */
  public static void setTransparent(int fd, boolean ipv6) throws NativeException {
    if (ipv6) {
      Native.setsockoptInt(fd, Native.SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
    } else {
      Native.setsockoptInt(fd, Native.SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
    }
    Native.setsockoptInt(fd, Native.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1, "IP_BIND_ADDRESS_NO_PORT");
  }

  /**
   * Sends through loopback ({@code SO_BINDTOIFINDEX} 1): for a connection to the namespace's own
   * address, whose arrival the kernel otherwise reports on the address's interface (eth0), so eBPF
   * mode's sk_lookup program can tell the proxy's delivery (ingress lo) from a client's. IPv6 finds
   * a route for such a socket only through the namespace's {@code CallerAddressRouting} ({@code
   * fwmark <proxy mark> oif lo}).
   */
  public static void bindToLoopback(int fd) throws NativeException {
    Native.setsockoptInt(
        fd, Native.SOL_SOCKET, SO_BINDTOIFINDEX, LOOPBACK_IFINDEX, "SO_BINDTOIFINDEX");
  }

  public static void setMark(int fd, int mark) throws NativeException {
    Native.setsockoptInt(fd, Native.SOL_SOCKET, Native.SO_MARK, mark, "SO_MARK");
  }

  public static int mark(int fd) throws NativeException {
    byte[] b = Native.getsockopt(fd, Native.SOL_SOCKET, Native.SO_MARK, 4, "SO_MARK");
    return (b[0] & 0xff) | (b[1] & 0xff) << 8 | (b[2] & 0xff) << 16 | (b[3] & 0xff) << 24;
  }

  public static long socketCookie(int fd) throws NativeException {
    return Native.getsockoptLong(fd, Native.SOL_SOCKET, Native.SO_COOKIE, "SO_COOKIE");
  }

  public static long netnsCookie(int fd) throws NativeException {
    return Native.getsockoptLong(fd, Native.SOL_SOCKET, Native.SO_NETNS_COOKIE, "SO_NETNS_COOKIE");
  }
}
