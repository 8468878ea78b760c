package dev.nodemesh.proxy.l7.path;

import java.util.Locale;
import java.util.Objects;

/**
 * How {@link RequestTarget} treats the two choices Envoy leaves to the operator. Dot segments are
 * always removed and unreserved characters always decoded (Envoy's {@code normalize_path}); those
 * have one meaning in RFC 3986 and no application can rely on the raw form.
 *
 * @param mergeSlashes {@code --path-merge-slashes} (default true, as Istio sets Envoy's {@code
 *     merge_slashes}): {@code //admin} becomes {@code /admin}. Most servers (and every static file
 *     server) treat an empty segment as nothing, so a rule on {@code /admin} must see it that way
 * @param escapedSlashes {@code --path-escaped-slashes}: what {@code %2F} and {@code %5C} in the
 *     path do (Envoy's {@code path_with_escaped_slashes_action})
 */
public record PathSettings(boolean mergeSlashes, EscapedSlashes escapedSlashes) {
  /**
   * Merge slashes, reject escaped slashes: the safe choice when the proxy cannot know whether the
   * app decodes {@code %2F} into a separator before it routes (many frameworks do).
   */
  public static final PathSettings DEFAULT = new PathSettings(true, EscapedSlashes.REJECT);

  public PathSettings {
    Objects.requireNonNull(escapedSlashes, "escapedSlashes");
  }

  /** What to do with {@code %2F} / {@code %5C} (either case) in the path. */
  public enum EscapedSlashes {
    /**
     * Answer 400: a path that one reader splits at {@code %2F} and another does not cannot be
     * authorized safely. Envoy's {@code REJECT_REQUEST}.
     */
    REJECT,
    /**
     * Keep them (as {@code %2F} / {@code %5C}, upper-cased) inside their segment; policy and routes
     * see them literally. For apps that carry names with slashes in one segment and never decode
     * them before routing. Envoy's {@code KEEP_UNCHANGED}, Envoy's own default.
     */
    KEEP,
    /**
     * Turn both into {@code /} before dot segments are removed and slashes merged, so everyone, the
     * app included, sees the same separators. Envoy's {@code UNESCAPE_AND_FORWARD} (with
     * normalisation, which also turns a backslash into a slash).
     */
    UNESCAPE;

    /** The flag's value: {@code reject}, {@code keep} or {@code unescape}, any case. */
    public static EscapedSlashes parse(String value) {
      return switch (value.toLowerCase(Locale.ROOT)) {
        case "reject" -> REJECT;
        case "keep" -> KEEP;
        case "unescape" -> UNESCAPE;
        default ->
            throw new IllegalArgumentException(
                "escaped slashes must be reject, keep or unescape, got " + value);
      };
    }

    /** The flag's spelling of this value. */
    public String flagValue() {
      return name().toLowerCase(Locale.ROOT);
    }
  }
}
