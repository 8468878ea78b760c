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

  private SocketOptions() {}

  /**
   * Where the peer meant to connect before iptables REDIRECT (or the eBPF getsockopt program)
   * changed it. Tries IPv4 first and then IPv6 for dual-stack sockets.
   */
  public static InetSocketAddress originalDestination(int fd) throws NativeException {
    NativeException v4Failure;
    try {
      return parseSockaddr(
          Native.getsockopt(fd, Native.SOL_IP, Native.SO_ORIGINAL_DST, 16, "SO_ORIGINAL_DST"));
    } catch (NativeException e) {
      v4Failure = e;
    }
    try {
      return parseSockaddr(
          Native.getsockopt(
              fd, Native.SOL_IPV6, Native.SO_ORIGINAL_DST, 28, "IP6T_SO_ORIGINAL_DST"));
    } catch (NativeException e) {
      throw v4Failure;
    }
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
