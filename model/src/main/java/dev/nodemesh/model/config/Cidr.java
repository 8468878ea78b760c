package dev.nodemesh.model.config;

import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * An IP block ({@code 10.0.0.0/8}, {@code fd00::/8}, or a single address, which is a /32 or /128)
 * as policy matches source addresses against it. The network address is kept with its host bits
 * cleared so that equal blocks are equal records.
 */
public record Cidr(InetAddress network, int prefix) {

  public Cidr {
    Objects.requireNonNull(network, "network");
    int bits = network.getAddress().length * 8;
    if (prefix < 0 || prefix > bits) {
      throw new IllegalArgumentException("prefix " + prefix + " is out of range 0-" + bits);
    }
    network = masked(network, prefix);
  }

  /** Parses {@code ip/prefix} or a bare IP literal (never resolving names); null if invalid. */
  public static @Nullable Cidr parse(String text) {
    int slash = text.indexOf('/');
    String ip = slash < 0 ? text : text.substring(0, slash);
    InetAddress address = NetUtil.createInetAddressFromIpAddressString(ip);
    if (address == null) {
      return null;
    }
    int bits = address.getAddress().length * 8;
    int prefix = bits;
    if (slash >= 0) {
      String p = text.substring(slash + 1);
      if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(Character::isDigit)) {
        return null;
      }
      prefix = Integer.parseInt(p);
      if (prefix > bits) {
        return null;
      }
    }
    return new Cidr(address, prefix);
  }

  /** True when {@code ip} is in this block (an address of the other family never is). */
  public boolean contains(InetAddress ip) {
    byte[] a = ip.getAddress();
    byte[] n = network.getAddress();
    if (a.length != n.length) {
      return false;
    }
    int full = prefix / 8;
    for (int i = 0; i < full; i++) {
      if (a[i] != n[i]) {
        return false;
      }
    }
    int rest = prefix % 8;
    if (rest == 0) {
      return true;
    }
    int mask = (0xff << (8 - rest)) & 0xff;
    return (a[full] & mask) == (n[full] & mask);
  }

  private static InetAddress masked(InetAddress ip, int prefix) {
    byte[] b = ip.getAddress();
    for (int i = 0; i < b.length; i++) {
      int keep = Math.max(0, Math.min(8, prefix - i * 8));
      b[i] = (byte) (b[i] & ((0xff << (8 - keep)) & 0xff));
    }
    try {
      return InetAddress.getByAddress(b);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalStateException("4 or 16 bytes is always an address", e);
    }
  }

  @Override
  public String toString() {
    return network.getHostAddress() + "/" + prefix;
  }
}
