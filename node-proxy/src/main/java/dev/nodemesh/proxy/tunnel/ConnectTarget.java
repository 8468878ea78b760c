package dev.nodemesh.proxy.tunnel;

import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;

/**
 * The {@code :authority} of an HBONE CONNECT: a literal pod IP and a port ({@code 10.0.0.5:8080} or
 * {@code [fd00::5]:8080}). Never a name: nothing here resolves DNS.
 */
public final class ConnectTarget {
  private ConnectTarget() {}

  /** The address, or null when {@code authority} is not a literal IP and a port 1-65535. */
  public static @Nullable InetSocketAddress parse(@Nullable CharSequence authority) {
    if (authority == null) {
      return null;
    }
    String s = authority.toString();
    int colon = s.lastIndexOf(':');
    if (colon <= 0 || colon == s.length() - 1) {
      return null;
    }
    String host = s.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
      if (!NetUtil.isValidIpV6Address(host)) {
        return null;
      }
    } else if (!NetUtil.isValidIpV4Address(host)) {
      return null;
    }
    int port;
    try {
      port = Integer.parseInt(s.substring(colon + 1));
    } catch (NumberFormatException e) {
      return null;
    }
    if (port < 1 || port > 65_535) {
      return null;
    }
    byte[] bytes = NetUtil.createByteArrayFromIpAddressString(host);
    if (bytes == null) {
      return null;
    }
    try {
      return new InetSocketAddress(InetAddress.getByAddress(bytes), port);
    } catch (java.net.UnknownHostException e) {
      return null; // only for a wrong length, which the validation above excludes
    }
  }

  /** The authority for {@code target}: {@code ip:port}, IPv6 in brackets. */
  public static String format(InetSocketAddress target) {
    InetAddress ip = target.getAddress();
    String host = NetUtil.toAddressString(ip);
    return (ip instanceof java.net.Inet6Address ? "[" + host + "]" : host) + ":" + target.getPort();
  }
}
