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
 * <p>Limits: Linux link names are at most 15 bytes, so the prefix is at most 8 characters and link
 * names carry a node index rather than a name. Pods' host-side veths are named by the CNI bridge
 * plugin, inside the node netns.
 */
public final class Names {
  /** Longest prefix that still leaves room for the "br" + node index suffixes. */
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

  /**
   * The namespace that plays node {@code node} and holds its bridge: {@code <prefix>.<node>}. The
   * dot keeps it apart from every pod netns, whose names only use [a-z0-9-].
   */
  public static String nodeNetns(String prefix, String node) {
    String clean = node.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9-]", "-");
    String full = prefix + "." + clean;
    if (full.length() <= MAX_NETNS && clean.equals(node)) {
      return full;
    }
    String hash = shortHash("node/" + node, 6);
    int keep = Math.min(full.length(), MAX_NETNS - hash.length() - 1);
    return full.substring(0, keep) + "-" + hash;
  }

  /** The bridge of the node with this index, inside its node netns (made by the bridge plugin). */
  public static String bridge(String prefix, int nodeIndex) {
    return prefix + "br" + nodeIndex;
  }

  /** The node's end of its underlay link, inside its node netns. */
  public static String underlayLink(String prefix, int nodeIndex) {
    return prefix + "u" + nodeIndex;
  }

  /** With three or more nodes, the namespace holding the underlay bridge. */
  public static String underlayNetns(String prefix) {
    return prefix + ".underlay";
  }

  /** The underlay bridge inside {@link #underlayNetns}. */
  public static String underlayBridge(String prefix) {
    return prefix + "ub";
  }

  /** The underlay netns's end of node {@code nodeIndex}'s link, a port of the underlay bridge. */
  public static String underlayPort(String prefix, int nodeIndex) {
    return prefix + "p" + nodeIndex;
  }

  /** The CNI network name (and conflist name) of a node: also host-local's state dir name. */
  public static String network(String prefix, String node) {
    return nodeNetns(prefix, node).replace('.', '-');
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

  static String shortHash(String s, int hexChars) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d).substring(0, hexChars);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is always present", e);
    }
  }
}
