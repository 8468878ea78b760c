package dev.nodemesh.scripts.local;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Names of everything local mode creates, all derived from one per-run prefix so that a run's
 * objects are recognisable and two runs never collide.
 *
 * <p>Limits: Linux link names are at most 15 bytes, so the prefix is at most 8 characters and veth
 * names carry a short hash of the pod rather than its name (a hash collision between two pods of
 * one run is detected by {@link LocalUp}, not avoided).
 */
public final class Names {
  /** Longest prefix that still leaves room for the "br" and "v" + 6 hex suffixes. */
  public static final int MAX_PREFIX = 8;

  /** Linux IFNAMSIZ - 1. */
  public static final int MAX_LINK = 15;

  /** Netns names become file names under /var/run/netns; keep them readable in `ip netns`. */
  public static final int MAX_NETNS = 40;

  private static final String PREFIX_PATTERN = "[a-z][a-z0-9]{1," + (MAX_PREFIX - 1) + "}";

  private Names() {}

  /** A fresh {@code nm} + 4 hex prefix. */
  public static String randomPrefix() {
    byte[] b = new byte[2];
    new SecureRandom().nextBytes(b);
    return "nm" + HexFormat.of().formatHex(b);
  }

  /** Rejects prefixes that would make invalid or ambiguous names. */
  public static String checkPrefix(String prefix) {
    if (!prefix.matches(PREFIX_PATTERN)) {
      throw new IllegalArgumentException(
          "prefix must match " + PREFIX_PATTERN + " (got '" + prefix + "')");
    }
    return prefix;
  }

  /** The namespace that plays the node and holds the bridge. */
  public static String nodeNetns(String prefix) {
    return prefix + "-node";
  }

  /** The bridge inside the node netns. */
  public static String bridge(String prefix) {
    return prefix + "br";
  }

  /**
   * The pod's netns: {@code <prefix>-<pod>} (with the namespace before the pod name unless it is
   * "default"), lower-cased, other characters than [a-z0-9-] replaced, and cut with a hash suffix
   * when too long so distinct long names stay distinct.
   */
  public static String podNetns(String prefix, String namespace, String pod) {
    String base = namespace.equals("default") ? pod : namespace + "-" + pod;
    String clean = base.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9-]", "-");
    String full = prefix + "-" + clean;
    if (full.length() <= MAX_NETNS && clean.equals(base)) {
      return full;
    }
    String hash = shortHash(namespace + "/" + pod, 6);
    int keep = Math.min(full.length(), MAX_NETNS - hash.length() - 1);
    return full.substring(0, keep) + "-" + hash;
  }

  /** The node-side end of a pod's veth pair: {@code <prefix>v<hash>}, at most 15 bytes. */
  public static String podVeth(String prefix, String namespace, String pod) {
    int room = MAX_LINK - prefix.length() - 1;
    return prefix + "v" + shortHash(namespace + "/" + pod, Math.min(room, 6));
  }

  static String shortHash(String s, int hexChars) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d).substring(0, hexChars);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is always present", e);
    }
  }
}
