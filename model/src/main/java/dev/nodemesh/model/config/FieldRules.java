package dev.nodemesh.model.config;

import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.util.List;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * The field rules both readers of config apply: the YAML parser ({@code parse.ResourceParser},
 * {@link TrafficPolicyParser}) and the xDS decoder ({@code ResourceDecoder}) check the same values
 * by the same predicates, so the control plane never sends what a proxy would refuse. Only the
 * predicates are shared; each reader words its own error (the texts are part of its contract: NACKs
 * and loader errors that operators and tests read).
 */
public final class FieldRules {
  /** The methods Gateway API allows in a route or policy match. */
  public static final List<String> HTTP_METHODS =
      List.of("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH");

  /** Kubernetes' IANA_SVC_NAME: 1-15 of a-z, 0-9, '-', not starting or ending with '-'. */
  private static final Pattern PORT_NAME = Pattern.compile("[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?");

  /**
   * Gateway API's PreciseHostname: lower-case RFC 1123 labels joined by dots, no wildcard, at most
   * 253 characters. What a redirect may put in a {@code Location} header.
   */
  private static final Pattern PRECISE_HOSTNAME =
      Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");

  /** The schemes a Gateway API RequestRedirect may set. */
  public static final List<String> REDIRECT_SCHEMES = List.of("http", "https");

  public static final int MIN_PORT = 1;
  public static final int MAX_PORT = 65535;

  private FieldRules() {}

  public static boolean isHttpMethod(String method) {
    return HTTP_METHODS.contains(method);
  }

  /** A port number: 1-65535. */
  public static boolean isPort(long port) {
    return port >= MIN_PORT && port <= MAX_PORT;
  }

  /** An HTTP field name (RFC 9110 token). */
  private static final Pattern HEADER_NAME = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

  /** An HTTP field name a header modifier may set, add or remove. */
  public static boolean isHeaderName(String name) {
    return HEADER_NAME.matcher(name).matches();
  }

  /** A value a header modifier may write: no CR, LF or NUL (they would split or end the head). */
  public static boolean isHeaderValue(String value) {
    return value.indexOf('\r') < 0 && value.indexOf('\n') < 0 && value.indexOf('\0') < 0;
  }

  /** A hostname Gateway API calls precise (no wildcard), e.g. a RequestRedirect's. */
  public static boolean isPreciseHostname(String name) {
    return name.length() <= 253 && PRECISE_HOSTNAME.matcher(name).matches();
  }

  /** A path a route filter may put in place of the request's: absolute, no CR, LF or space. */
  public static boolean isReplacementPath(String path) {
    if (!path.startsWith("/")) {
      return false;
    }
    for (int i = 0; i < path.length(); i++) {
      char c = path.charAt(i);
      if (c <= ' ' || c == 0x7f || c == '?' || c == '#') {
        return false;
      }
    }
    return true;
  }

  /** A port name: {@code PORT_NAME} and at least one letter (Kubernetes' rule). */
  public static boolean isPortName(String name) {
    return PORT_NAME.matcher(name).matches() && name.chars().anyMatch(Character::isLetter);
  }

  /**
   * Parses an IP literal without ever resolving a name ({@code InetAddress.getByName} would do a
   * DNS lookup for "10.0.0.x", and Java 17 has no {@code InetAddress.ofLiteral}); null if {@code
   * text} is not one.
   */
  public static @Nullable InetAddress ipLiteral(String text) {
    return NetUtil.createInetAddressFromIpAddressString(text);
  }
}
