package dev.nodemesh.proxy.l7.path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.l7.path.PathSettings.EscapedSlashes;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpVersion;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class RequestTargetTest {
  private static final String REJECT = "400";

  /**
   * Every way of naming {@code /admin} (or climbing to it) that a server might serve as {@code
   * /admin}: each must come out as a path under {@code /admin} (so a DENY of {@code /admin*} holds)
   * or be refused. Input, then the normalised target (path and query) or 400.
   */
  static Stream<Arguments> bypasses() {
    return Stream.of(
        Arguments.of("/admin", "/admin"),
        Arguments.of("/admin/", "/admin/"),
        Arguments.of("/admin/users", "/admin/users"),
        // percent-encoded unreserved characters, either case
        Arguments.of("/%61dmin", "/admin"),
        Arguments.of("/%41%44MIN", "/ADMIN"), // case is the app's business; decoding is ours
        Arguments.of("/adm%69n", "/admin"),
        Arguments.of("/%61%64%6d%69%6e", "/admin"),
        Arguments.of("/%61%64%6D%69%6E/x", "/admin/x"),
        // dot segments, raw and encoded
        Arguments.of("/./admin", "/admin"),
        Arguments.of("/x/../admin", "/admin"),
        Arguments.of("/x/y/../../admin", "/admin"),
        Arguments.of("/../admin", "/admin"),
        Arguments.of("/../../../admin", "/admin"),
        Arguments.of("/public/../admin", "/admin"),
        Arguments.of("/x/%2e%2e/admin", "/admin"),
        Arguments.of("/x/%2E%2E/admin", "/admin"),
        Arguments.of("/x/.%2e/admin", "/admin"),
        Arguments.of("/x/%2e./admin", "/admin"),
        Arguments.of("/%2e/admin", "/admin"),
        Arguments.of("/admin/.", "/admin/"),
        Arguments.of("/admin/x/..", "/admin/"),
        Arguments.of("/admin/./users", "/admin/users"),
        // merged slashes
        Arguments.of("//admin", "/admin"),
        Arguments.of("///admin", "/admin"),
        Arguments.of("/x//../admin", "/admin"),
        Arguments.of("/.//admin", "/admin"),
        Arguments.of("//admin//users", "/admin/users"),
        // absolute-form
        Arguments.of("http://web/admin", "/admin"),
        Arguments.of("HTTP://web:8080/x/../admin?a=1", "/admin?a=1"),
        Arguments.of("https://web/%61dmin", "/admin"),
        Arguments.of("http://web//admin", "/admin"),
        // the query is kept apart and untouched
        Arguments.of("/admin?x=/../public", "/admin?x=/../public"),
        Arguments.of("/x/../admin?a=%2e%2e&b=%2F", "/admin?a=%2e%2e&b=%2F"),
        Arguments.of("/admin?", "/admin?"),
        // Tomcat-style dot segments with parameters climb there: refused
        Arguments.of("/public/..;/admin", REJECT),
        Arguments.of("/public/..;x=1/admin", REJECT),
        Arguments.of("/public/.;/admin", REJECT),
        Arguments.of("/public/%2e%2e;/admin", REJECT),
        // backslashes, raw or escaped (escaped slashes are refused by default)
        Arguments.of("/x\\..\\admin", REJECT),
        Arguments.of("/\\admin", REJECT),
        Arguments.of("/x/..%5cadmin", REJECT),
        Arguments.of("/x/..%5Cadmin", REJECT),
        Arguments.of("/x%2F..%2Fadmin", REJECT),
        Arguments.of("/x%2f..%2fadmin", REJECT),
        // control characters, NUL, spaces: raw or encoded
        Arguments.of("/admin\u0000", REJECT),
        Arguments.of("/adm\u0000in", REJECT),
        Arguments.of("/admin%00", REJECT),
        Arguments.of("/admin%00.png", REJECT),
        Arguments.of("/ad\tmin", REJECT),
        Arguments.of("/admin\r\nx-injected: 1", REJECT),
        Arguments.of("/admin%0d%0aX: 1", REJECT),
        Arguments.of("/admin%7f", REJECT),
        Arguments.of("/admin\u007f", REJECT),
        Arguments.of("/adm in", REJECT),
        Arguments.of("/public?x=\r\n", REJECT),
        // invalid or overlong percent sequences
        Arguments.of("/%", REJECT),
        Arguments.of("/admin%", REJECT),
        Arguments.of("/admin%4", REJECT),
        Arguments.of("/%zzadmin", REJECT),
        Arguments.of("/%u0061dmin", REJECT),
        Arguments.of("/x/%u002e%u002e/admin", REJECT),
        Arguments.of("/x/%c0%ae%c0%ae/admin", REJECT), // overlong '.'
        Arguments.of("/x/%e0%80%ae/admin", REJECT), // overlong '.' in three bytes
        Arguments.of("/x%c0%afadmin", REJECT), // overlong '/'
        Arguments.of("/%ed%a0%80admin", REJECT), // a surrogate
        Arguments.of("/%c3admin", REJECT), // truncated sequence
        Arguments.of("/%a9admin", REJECT), // continuation byte first
        Arguments.of("/%f5%80%80%80admin", REJECT), // above U+10FFFF
        // fragments and other forms
        Arguments.of("/public#/../admin", REJECT),
        Arguments.of("admin", REJECT),
        Arguments.of("../admin", REJECT),
        Arguments.of("", REJECT),
        Arguments.of("ftp://web/admin", REJECT),
        Arguments.of("http://user@web/admin", REJECT),
        Arguments.of("http:///admin", REJECT),
        Arguments.of("web:80", REJECT));
  }

  @ParameterizedTest
  @MethodSource("bypasses")
  void bypassAttempts(String target, String expected) {
    RequestTarget.Result r = RequestTarget.normalize(target, PathSettings.DEFAULT);
    if (expected.equals(REJECT)) {
      assertInstanceOf(RequestTarget.Rejected.class, r, () -> target + " -> " + r);
      return;
    }
    RequestTarget.Normalized n = assertInstanceOf(RequestTarget.Normalized.class, r, target);
    assertEquals(expected, n.uri(), target);
    String lower = n.path().toLowerCase(java.util.Locale.ROOT);
    assertTrue(lower.startsWith("/admin"), () -> target + " escapes /admin* as " + n.path());
    assertIdempotent(target, PathSettings.DEFAULT);
  }

  /** Paths that must pass, some of them changed only by the normalisation Envoy does. */
  static Stream<Arguments> ordinary() {
    return Stream.of(
        Arguments.of("/", "/"),
        Arguments.of("/public/a", "/public/a"),
        Arguments.of("/public/a?b=c&d=e", "/public/a?b=c&d=e"),
        Arguments.of("/a/b/", "/a/b/"),
        Arguments.of("/..", "/"),
        Arguments.of("/.", "/"),
        Arguments.of("/a/..", "/"),
        Arguments.of("/a/../", "/"),
        Arguments.of("//", "/"),
        Arguments.of("/a//", "/a/"),
        Arguments.of("/...", "/..."), // three dots is a name
        Arguments.of("/.a/..b/", "/.a/..b/"),
        Arguments.of("/%7euser/%5f", "/~user/_"),
        Arguments.of("/a%2cb", "/a%2Cb"), // reserved escapes stay, hex upper-cased
        Arguments.of("/a%25b", "/a%25b"), // an escaped % stays escaped
        Arguments.of("/a%3b/..;x", REJECT),
        Arguments.of("/admin;jsessionid=1", "/admin;jsessionid=1"),
        Arguments.of("/caf%c3%a9", "/caf%C3%A9"),
        Arguments.of("/caf\u00c3\u00a9", "/caf%C3%A9"), // raw UTF-8 bytes are escaped
        Arguments.of("/%f0%9f%98%80", "/%F0%9F%98%80"),
        Arguments.of("/caf\u00e9", REJECT), // a raw Latin-1 byte is not UTF-8
        Arguments.of("/a{b}|c^d`e\"f<g>[h]", "/a%7Bb%7D%7Cc%5Ed%60e%22f%3Cg%3E%5Bh%5D"),
        Arguments.of("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="),
        Arguments.of("*", "*"),
        Arguments.of("http://web", "/"),
        Arguments.of("http://web?x=1", "/?x=1"),
        Arguments.of("http://[fd00::1]:8080/a", "/a"));
  }

  @ParameterizedTest
  @MethodSource("ordinary")
  void ordinaryTargets(String target, String expected) {
    RequestTarget.Result r = RequestTarget.normalize(target, PathSettings.DEFAULT);
    if (expected.equals(REJECT)) {
      assertInstanceOf(RequestTarget.Rejected.class, r, () -> target + " -> " + r);
      return;
    }
    assertEquals(
        expected, assertInstanceOf(RequestTarget.Normalized.class, r, target).uri(), target);
    assertIdempotent(target, PathSettings.DEFAULT);
  }

  /** The settings: {@code --path-merge-slashes=false} and the three escaped-slash actions. */
  static Stream<Arguments> settings() {
    PathSettings keep = new PathSettings(true, EscapedSlashes.KEEP);
    PathSettings unescape = new PathSettings(true, EscapedSlashes.UNESCAPE);
    PathSettings noMerge = new PathSettings(false, EscapedSlashes.REJECT);
    return Stream.of(
        Arguments.of(keep, "/x%2f..%2fadmin", "/x%2F..%2Fadmin"), // one segment, case normalised
        Arguments.of(keep, "/a%5cb", "/a%5Cb"),
        Arguments.of(keep, "/a/%2e%2e%2fb", "/a/..%2Fb"), // not a dot segment while kept
        Arguments.of(keep, "/x\\..\\admin", REJECT), // raw backslashes stay refused
        Arguments.of(unescape, "/x%2F..%2Fadmin", "/admin"),
        Arguments.of(unescape, "/x%5C..%5Cadmin", "/admin"),
        Arguments.of(unescape, "/%2F%2Fadmin", "/admin"),
        Arguments.of(unescape, "/a%2Fb", "/a/b"),
        Arguments.of(noMerge, "//admin", "//admin"),
        Arguments.of(noMerge, "/a//b", "/a//b"),
        Arguments.of(noMerge, "/a//../b", "/a/b"), // RFC 3986: ".." removes the empty segment
        Arguments.of(noMerge, "/x/./admin", "/x/admin"),
        Arguments.of(noMerge, "/x/%2F", REJECT));
  }

  @ParameterizedTest
  @MethodSource("settings")
  void settingsChangeOnlyWhatTheySay(PathSettings s, String target, String expected) {
    RequestTarget.Result r = RequestTarget.normalize(target, s);
    if (expected.equals(REJECT)) {
      assertInstanceOf(RequestTarget.Rejected.class, r, () -> target + " -> " + r);
      return;
    }
    assertEquals(expected, assertInstanceOf(RequestTarget.Normalized.class, r, target).uri());
    assertIdempotent(target, s);
  }

  @Test
  void absoluteFormGivesItsAuthorityAsTheHostAndAnOriginFormUri() {
    HttpRequest head =
        new DefaultHttpRequest(
            HttpVersion.HTTP_1_1, HttpMethod.GET, "http://api:8080/x/../admin?q");
    head.headers().set("host", "other");
    assertNull(RequestTarget.normalize(head, PathSettings.DEFAULT));
    assertEquals("/admin?q", head.uri());
    assertEquals("api:8080", head.headers().get("host"));

    HttpRequest origin = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/%61dmin");
    origin.headers().set("host", "web");
    assertNull(RequestTarget.normalize(origin, PathSettings.DEFAULT));
    assertEquals("/admin", origin.uri());
    assertEquals("web", origin.headers().get("host"));
  }

  @Test
  void aRejectedTargetLeavesTheHeadAsItWasAndSaysWhy() {
    HttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/a%2Fb");
    assertEquals(
        "escaped slash (%2F or %5C) in the path",
        RequestTarget.normalize(head, PathSettings.DEFAULT));
    assertEquals("/a%2Fb", head.uri());
  }

  @Test
  void asteriskFormOnlyForOptions() {
    HttpRequest options = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.OPTIONS, "*");
    assertNull(RequestTarget.normalize(options, PathSettings.DEFAULT));
    HttpRequest get = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "*");
    assertEquals(
        "asterisk-form request-target is only for OPTIONS",
        RequestTarget.normalize(get, PathSettings.DEFAULT));
  }

  @Test
  void escapedSlashesFlagValues() {
    assertEquals(EscapedSlashes.REJECT, EscapedSlashes.parse("reject"));
    assertEquals(EscapedSlashes.KEEP, EscapedSlashes.parse("KEEP"));
    assertEquals(EscapedSlashes.UNESCAPE, EscapedSlashes.parse("unescape"));
    assertEquals("unescape", EscapedSlashes.UNESCAPE.flagValue());
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> EscapedSlashes.parse("decode"));
    assertEquals("escaped slashes must be reject, keep or unescape, got decode", e.getMessage());
  }

  /**
   * Random targets from an alphabet rich in the characters that matter: whatever is accepted is a
   * fixed point (normalising it again changes nothing), starts with a slash, holds no dot segment
   * and, with merging, no empty segment but a trailing one.
   */
  @Test
  void normalisedTargetsAreFixedPoints() {
    String[] parts = {
      "/", "/", ".", "..", "a", "%2e", "%2E", "%61", "%2f", "%5c", "%41", "%c3%a9", "%25", ";", "?",
      "%", "\\", "~", "%7E", "b"
    };
    Random rnd = new Random(17);
    int accepted = 0;
    for (PathSettings s :
        new PathSettings[] {
          PathSettings.DEFAULT,
          new PathSettings(false, EscapedSlashes.KEEP),
          new PathSettings(true, EscapedSlashes.UNESCAPE)
        }) {
      for (int i = 0; i < 20_000; i++) {
        StringBuilder b = new StringBuilder("/");
        int len = rnd.nextInt(8);
        for (int k = 0; k < len; k++) {
          b.append(parts[rnd.nextInt(parts.length)]);
        }
        String target = b.toString();
        if (RequestTarget.normalize(target, s) instanceof RequestTarget.Normalized n) {
          accepted++;
          assertIdempotent(target, s);
          assertTrue(n.path().startsWith("/"), target);
          for (String seg : n.path().substring(1).split("/", -1)) {
            assertTrue(!seg.equals(".") && !seg.equals(".."), () -> target + " -> " + n.path());
          }
          if (s.mergeSlashes()) {
            assertTrue(!n.path().substring(1).contains("//"), () -> target + " -> " + n.path());
          }
        }
      }
    }
    assertTrue(accepted > 10_000, "too few accepted targets to mean anything: " + accepted);
  }

  private static void assertIdempotent(String target, PathSettings s) {
    RequestTarget.Normalized once = (RequestTarget.Normalized) RequestTarget.normalize(target, s);
    RequestTarget.Result twice = RequestTarget.normalize(once.uri(), s);
    RequestTarget.Normalized again =
        assertInstanceOf(RequestTarget.Normalized.class, twice, () -> once.uri() + " -> " + twice);
    assertEquals(once.uri(), again.uri(), () -> "not a fixed point: " + target);
  }
}
