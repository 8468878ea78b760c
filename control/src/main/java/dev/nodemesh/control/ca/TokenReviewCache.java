package dev.nodemesh.control.ca;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * TokenReview answers by token, so that a node proxy's calls (an xDS stream and a CSR per identity,
 * each reconnect) cost one TokenReview per token lifetime rather than two API requests per call.
 *
 * <p>Keys are SHA-256 digests, never the tokens. An accepted token is kept until the earlier of its
 * {@code exp} claim (read from the JWT without checking the signature: the API server has just
 * checked it, and the claim only shortens our own cache) and {@link #maxAge} after it was reviewed,
 * so a proxy pod deleted while its token still lives is noticed within {@code maxAge}. A refused
 * token is kept for {@link #refusalAge} (much shorter), so one bad token retried in a loop costs
 * one review per that period; an API server failure is never kept. At most {@code capacity}
 * entries, the least recently used go first.
 */
final class TokenReviewCache {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A cached answer: the node, or the refusal's reason. */
  record Answer(@Nullable String node, @Nullable String refusal, Instant until) {}

  private final Clock clock;
  private final Duration maxAge;
  private final Duration refusalAge;
  private final LinkedHashMap<String, Answer> entries;

  TokenReviewCache(Clock clock, Duration maxAge, Duration refusalAge, int capacity) {
    this.clock = clock;
    this.maxAge = maxAge;
    this.refusalAge = refusalAge;
    this.entries =
        new LinkedHashMap<>(16, 0.75f, true) {
          private static final long serialVersionUID = 1L;

          @Override
          protected boolean removeEldestEntry(Map.Entry<String, Answer> eldest) {
            return size() > capacity;
          }
        };
  }

  /** The live answer for this token, or null. */
  synchronized @Nullable Answer get(String token) {
    String key = key(token);
    Answer a = entries.get(key);
    if (a == null) {
      return null;
    }
    if (!clock.instant().isBefore(a.until())) {
      entries.remove(key);
      return null;
    }
    return a;
  }

  synchronized void accepted(String token, String node) {
    Instant now = clock.instant();
    Instant until = now.plus(maxAge);
    Instant exp = expiry(token);
    if (exp != null && exp.isBefore(until)) {
      until = exp;
    }
    if (until.isAfter(now)) {
      entries.put(key(token), new Answer(node, null, until));
    }
  }

  synchronized void refused(String token, String reason) {
    entries.put(key(token), new Answer(null, reason, clock.instant().plus(refusalAge)));
  }

  synchronized int size() {
    return entries.size();
  }

  /** The JWT's {@code exp} claim, or null when the token is no JWT or has none. */
  static @Nullable Instant expiry(String token) {
    String[] parts = token.split("\\.", -1);
    if (parts.length != 3) {
      return null;
    }
    try {
      JsonNode claims = JSON.readTree(Base64.getUrlDecoder().decode(parts[1]));
      JsonNode exp = claims == null ? null : claims.get("exp");
      return exp != null && exp.canConvertToLong() ? Instant.ofEpochSecond(exp.asLong()) : null;
    } catch (java.io.IOException | IllegalArgumentException e) {
      return null;
    }
  }

  private static String key(String token) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JDK", e);
    }
  }
}
