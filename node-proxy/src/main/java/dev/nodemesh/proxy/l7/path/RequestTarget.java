package dev.nodemesh.proxy.l7.path;

import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.jspecify.annotations.Nullable;

/**
 * The one normalisation of a request-target, so that the router, the L7 authorizer, the access log
 * and the upstream app all read the same path. Without it a DENY of {@code /admin*} is bypassed by
 * {@code /%61dmin}, {@code /./admin}, {@code /x/../admin} or {@code //admin}, which the app serves
 * as {@code /admin}. Pure: a string in, a path or a reason to answer 400 out.
 *
 * <p>What it does, in order (Envoy's {@code normalize_path}, {@code merge_slashes} and {@code
 * path_with_escaped_slashes_action}, plus what Envoy leaves to its HTTP/1 parser):
 *
 * <ol>
 *   <li>Absolute-form ({@code http://host/admin?q}, RFC 9112 §3.2.2) is reduced to its path and
 *       query; its authority replaces the Host header ({@link #normalize(HttpRequest,
 *       PathSettings)}). Only {@code http} and {@code https}, no userinfo. Asterisk-form ({@code
 *       *}) is left alone (OPTIONS only). Anything else that does not start with {@code /} is 400.
 *   <li>The query (from the first {@code ?}) is kept apart and never changed: it is not a path, and
 *       an app's query parser decides what {@code ..} there means.
 *   <li>Control characters, spaces and DEL anywhere in the target, a fragment ({@code #}), a raw
 *       backslash in the path: 400. None is valid in a request-target, and each is read differently
 *       by different servers (a backslash is a separator to some).
 *   <li>Percent-encoding (RFC 3986 §6.2.2.2): unreserved characters ({@code A-Z a-z 0-9 - . _ ~})
 *       are decoded, every other escape is kept with upper-case hex. A {@code %} not followed by
 *       two hex digits ({@code %zz}, {@code %u002e}, a trailing {@code %4}), an encoded control
 *       character ({@code %00}-{@code %1F}, {@code %7F}), or escaped bytes that are not well-formed
 *       UTF-8 (overlong forms such as {@code %C0%AE}, surrogates, truncated sequences): 400.
 *       Printable ASCII not allowed raw in a path ({@code " < > [ ] ^ ` { | }}) and raw bytes above
 *       0x7F are percent-encoded, so the upstream request line stays valid.
 *   <li>{@code %2F} and {@code %5C}: rejected, kept or turned into {@code /} as {@link
 *       PathSettings#escapedSlashes()} says.
 *   <li>Dot segments are removed (RFC 3986 §5.2.4; {@code ..} above the root is dropped), after
 *       decoding, so {@code %2e%2E} counts. A dot segment carrying parameters ({@code ..;x}, {@code
 *       .;}) is 400: Tomcat and others strip the parameter and then climb, which no rule here could
 *       follow.
 *   <li>Empty segments are dropped when {@link PathSettings#mergeSlashes()}; a trailing slash stays
 *       ({@code /admin/} and {@code /admin} remain different paths, as for every server).
 * </ol>
 *
 * <p>The result is idempotent: normalising a normalised target changes nothing. Limits: a path
 * parameter on a plain segment ({@code /admin;x}) is kept as it is (a policy of exact {@code
 * /admin} does not match it; prefix policies do); non-UTF-8 paths are refused rather than carried.
 */
public final class RequestTarget {
  private RequestTarget() {}

  /** The outcome of {@link #normalize(String, PathSettings)}. */
  public sealed interface Result {}

  /**
   * A target to forward.
   *
   * @param path the normalised path, starting with {@code /} (or {@code *})
   * @param query {@code ?} and the query exactly as received, or empty
   * @param authority the host (and port) of an absolute-form target, null for origin-form
   */
  public record Normalized(String path, String query, @Nullable String authority)
      implements Result {
    /** The origin-form target to send upstream: path and query. */
    public String uri() {
      return path + query;
    }
  }

  /** A target to answer 400, with the reason (safe to show: it never echoes the target). */
  public record Rejected(String reason) implements Result {}

  /**
   * Normalises {@code head}'s target in place: its URI becomes the normalised origin-form target,
   * and an absolute-form target's authority becomes its Host. Call it once, before anything reads
   * the path.
   *
   * @return null when the request may go on, else why it must be answered 400
   */
  public static @Nullable String normalize(HttpRequest head, PathSettings settings) {
    Result result = normalize(head.uri(), settings);
    if (result instanceof Rejected rejected) {
      return rejected.reason();
    }
    Normalized n = (Normalized) result;
    if (n.path().equals("*") && !HttpMethod.OPTIONS.equals(head.method())) {
      return "asterisk-form request-target is only for OPTIONS";
    }
    head.setUri(n.uri());
    if (n.authority() != null) {
      head.headers().set(HttpHeaderNames.HOST, n.authority());
    }
    return null;
  }

  /** Normalises one request-target as received (HTTP/1.1 request line or HTTP/2 {@code :path}). */
  public static Result normalize(String target, PathSettings settings) {
    int n = target.length();
    if (n == 0) {
      return new Rejected("empty request-target");
    }
    for (int i = 0; i < n; i++) {
      char c = target.charAt(i);
      if (c <= 0x20 || c == 0x7F) {
        return new Rejected("control character or space in the request-target");
      }
      if (c == '#') {
        return new Rejected("fragment in the request-target");
      }
      if (c > 0xFF) {
        // Netty hands over the target's bytes as chars 0-255; anything above is not from the wire.
        return new Rejected("request-target is not a byte string");
      }
    }
    if (target.equals("*")) {
      return new Normalized("*", "", null);
    }
    String authority = null;
    int start = 0;
    if (target.charAt(0) != '/') {
      int colon = schemeEnd(target);
      if (colon < 0) {
        return new Rejected("request-target is neither a path nor an absolute http URI");
      }
      String scheme = target.substring(0, colon).toLowerCase(Locale.ROOT);
      if (!scheme.equals("http") && !scheme.equals("https")) {
        return new Rejected("absolute-form request-target with scheme " + scheme);
      }
      int a = colon + 3;
      int end = a;
      while (end < n && target.charAt(end) != '/' && target.charAt(end) != '?') {
        end++;
      }
      authority = target.substring(a, end);
      String bad = checkAuthority(authority);
      if (bad != null) {
        return new Rejected(bad);
      }
      start = end;
    }
    int q = target.indexOf('?', start);
    String rawPath = target.substring(start, q < 0 ? n : q);
    String query = q < 0 ? "" : target.substring(q);
    if (rawPath.isEmpty()) {
      rawPath = "/"; // http://host or http://host?q
    }
    StringBuilder decoded = new StringBuilder(rawPath.length() + 8);
    String bad = decode(rawPath, settings.escapedSlashes(), decoded);
    if (bad != null) {
      return new Rejected(bad);
    }
    List<String> segments = new ArrayList<>();
    bad = removeDotSegments(decoded, settings.mergeSlashes(), segments);
    if (bad != null) {
      return new Rejected(bad);
    }
    return new Normalized("/" + String.join("/", segments), query, authority);
  }

  /** The index of the {@code :} of a leading {@code scheme://}, or -1. */
  private static int schemeEnd(String target) {
    int n = target.length();
    int i = 0;
    while (i < n) {
      char c = target.charAt(i);
      boolean ok = isAlpha(c) || (i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'));
      if (!ok) {
        break;
      }
      i++;
    }
    return i > 0 && target.startsWith("://", i) ? i : -1;
  }

  private static @Nullable String checkAuthority(String authority) {
    if (authority.isEmpty()) {
      return "absolute-form request-target without a host";
    }
    for (int i = 0; i < authority.length(); i++) {
      char c = authority.charAt(i);
      if (c == '@') {
        return "userinfo in the request-target";
      }
      if (!(isUnreserved(c) || isSubDelim(c) || c == ':' || c == '[' || c == ']')) {
        return "invalid character in the request-target's host";
      }
    }
    return null;
  }

  /**
   * Appends {@code raw} to {@code out} with unreserved characters decoded and every other escape
   * upper-cased (escaped slashes as {@code mode} says). Returns why it must be refused, or null.
   */
  private static @Nullable String decode(
      String raw, PathSettings.EscapedSlashes mode, StringBuilder out) {
    Utf8 utf8 = new Utf8();
    int n = raw.length();
    for (int i = 0; i < n; i++) {
      char c = raw.charAt(i);
      if (c == '%') {
        int hi = i + 1 < n ? hexValue(raw.charAt(i + 1)) : -1;
        int lo = i + 2 < n ? hexValue(raw.charAt(i + 2)) : -1;
        if (hi < 0 || lo < 0) {
          return "invalid percent-encoding in the path";
        }
        i += 2;
        int b = hi << 4 | lo;
        if (b >= 0x80) {
          if (!utf8.accept(b)) {
            return "percent-encoded bytes in the path are not UTF-8";
          }
          escape(out, b);
          continue;
        }
        if (!utf8.atBoundary()) {
          return "percent-encoded bytes in the path are not UTF-8";
        }
        if (b < 0x20 || b == 0x7F) {
          return "percent-encoded control character in the path";
        }
        if (isUnreserved((char) b)) {
          out.append((char) b);
        } else if (b == '/' || b == '\\') {
          switch (mode) {
            case REJECT -> {
              return "escaped slash (%2F or %5C) in the path";
            }
            case KEEP -> escape(out, b);
            case UNESCAPE -> out.append('/');
          }
        } else {
          escape(out, b);
        }
        continue;
      }
      if (c >= 0x80) {
        if (!utf8.accept(c)) {
          return "bytes in the path are not UTF-8";
        }
        escape(out, c);
        continue;
      }
      if (!utf8.atBoundary()) {
        return "bytes in the path are not UTF-8";
      }
      if (c == '\\') {
        return "backslash in the path";
      }
      if (isPathChar(c)) {
        out.append(c);
      } else {
        escape(out, c);
      }
    }
    return utf8.atBoundary() ? null : "bytes in the path are not UTF-8";
  }

  /**
   * RFC 3986 §5.2.4 over the segments of {@code path} (which starts with {@code /}), merging empty
   * segments when asked. {@code out} gets the segments after the leading slash; a trailing empty
   * one stands for a trailing slash.
   */
  private static @Nullable String removeDotSegments(
      CharSequence path, boolean mergeSlashes, List<String> out) {
    int n = path.length();
    int from = 1;
    while (true) {
      int to = from;
      while (to < n && path.charAt(to) != '/') {
        to++;
      }
      String seg = path.subSequence(from, to).toString();
      boolean last = to >= n;
      int semi = seg.indexOf(';');
      String bare = semi < 0 ? seg : seg.substring(0, semi);
      if (semi >= 0 && (bare.equals(".") || bare.equals(".."))) {
        return "dot segment with parameters (such as ..;) in the path";
      }
      if (seg.equals(".") || seg.equals("..")) {
        if (seg.equals("..") && !out.isEmpty()) {
          out.remove(out.size() - 1);
        }
        if (last) {
          out.add(""); // "/a/b/.." is "/a/"
        }
      } else if (!(seg.isEmpty() && mergeSlashes && !last)) {
        out.add(seg);
      }
      if (last) {
        return null;
      }
      from = to + 1;
    }
  }

  /**
   * Checks a run of bytes above 0x7F for well-formed UTF-8 (RFC 3629's table: no overlong forms, no
   * surrogates, nothing above U+10FFFF), one byte at a time.
   */
  private static final class Utf8 {
    private int needed;
    private int low = 0x80;
    private int high = 0xBF;

    boolean atBoundary() {
      return needed == 0;
    }

    boolean accept(int b) {
      if (needed > 0) {
        if (b < low || b > high) {
          return false;
        }
        needed--;
        low = 0x80;
        high = 0xBF;
        return true;
      }
      if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        needed = 2;
        if (b == 0xE0) {
          low = 0xA0; // below is overlong
        } else if (b == 0xED) {
          high = 0x9F; // above are surrogates
        }
      } else if (b >= 0xF0 && b <= 0xF4) {
        needed = 3;
        if (b == 0xF0) {
          low = 0x90;
        } else if (b == 0xF4) {
          high = 0x8F;
        }
      } else {
        return false; // a continuation byte first, C0/C1 (overlong), F5-FF
      }
      return true;
    }
  }

  private static final char[] HEX = "0123456789ABCDEF".toCharArray();

  private static void escape(StringBuilder out, int b) {
    out.append('%').append(HEX[b >> 4]).append(HEX[b & 0xF]);
  }

  private static int hexValue(char c) {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  }

  private static boolean isAlpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private static boolean isUnreserved(char c) {
    return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
  }

  private static boolean isSubDelim(char c) {
    return "!$&'()*+,;=".indexOf(c) >= 0;
  }

  /** RFC 3986 pchar (without escapes) or the separator. */
  private static boolean isPathChar(char c) {
    return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/';
  }
}
