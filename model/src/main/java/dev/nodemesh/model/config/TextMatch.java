package dev.nodemesh.model.config;

import com.google.re2j.Pattern;
import java.util.Objects;
import java.util.regex.PatternSyntaxException;
import org.jspecify.annotations.Nullable;

/**
 * One Gateway API string match (path, header or query parameter), with its regular expression
 * compiled once when the config is built, never per request. Equality is by kind, name and value,
 * so two snapshots with the same routes compare equal.
 *
 * <p>A path prefix matches whole path segments, as Gateway API requires: {@code /foo} matches
 * {@code /foo}, {@code /foo/} and {@code /foo/bar}, not {@code /foobar}. Regular expressions are
 * RE2's (RE2/J), as Envoy's, and must match the whole value: matching takes time linear in the
 * input whatever the pattern (a tenant's route runs on the shared event loops), so what needs
 * backtracking (backreferences, lookaround, possessive quantifiers) is refused when the config is
 * validated.
 */
public final class TextMatch {
  /** How {@link #value} is compared. */
  public enum Kind {
    EXACT,
    PATH_PREFIX,
    REGULAR_EXPRESSION
  }

  private final Kind kind;
  private final String name;
  private final String value;
  private final @Nullable Pattern pattern;

  /**
   * @param name header or query parameter name; empty for a path
   * @throws PatternSyntaxException when a regular expression does not compile under RE2 (its
   *     description is RE2/J's, which names unsupported syntax such as a backreference)
   */
  public TextMatch(Kind kind, String name, String value) {
    this.kind = Objects.requireNonNull(kind);
    this.name = Objects.requireNonNull(name);
    this.value = Objects.requireNonNull(value);
    this.pattern = kind == Kind.REGULAR_EXPRESSION ? compile(value) : null;
  }

  /** RE2/J's compile, its syntax error as the JDK's exception the parsers already report. */
  private static Pattern compile(String regex) {
    try {
      return Pattern.compile(regex);
    } catch (com.google.re2j.PatternSyntaxException e) {
      // The message names the offending part (the description alone does not).
      throw new PatternSyntaxException(e.getMessage(), regex, e.getIndex());
    }
  }

  public static TextMatch pathPrefix(String prefix) {
    return new TextMatch(Kind.PATH_PREFIX, "", prefix);
  }

  public Kind kind() {
    return kind;
  }

  public String name() {
    return name;
  }

  public String value() {
    return value;
  }

  /** True when {@code actual} (a path without query, a header or parameter value) matches. */
  public boolean matches(@Nullable String actual) {
    if (actual == null) {
      return false;
    }
    return switch (kind) {
      case EXACT -> value.equals(actual);
      case REGULAR_EXPRESSION -> Objects.requireNonNull(pattern).matcher(actual).matches();
      case PATH_PREFIX -> prefixMatches(actual);
    };
  }

  private boolean prefixMatches(String path) {
    String prefix =
        value.endsWith("/") && value.length() > 1 ? value.substring(0, value.length() - 1) : value;
    if (prefix.equals("/")) {
      return path.startsWith("/");
    }
    return path.startsWith(prefix)
        && (path.length() == prefix.length() || path.charAt(prefix.length()) == '/');
  }

  @Override
  public boolean equals(@Nullable Object o) {
    return o instanceof TextMatch m
        && m.kind == kind
        && m.name.equals(name)
        && m.value.equals(value);
  }

  @Override
  public int hashCode() {
    return Objects.hash(kind, name, value);
  }

  @Override
  public String toString() {
    return kind + (name.isEmpty() ? "" : " " + name) + " " + value;
  }
}
