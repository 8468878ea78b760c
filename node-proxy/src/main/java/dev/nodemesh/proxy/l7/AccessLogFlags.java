package dev.nodemesh.proxy.l7;

import dev.nodemesh.proxy.accesslog.ResponseFlag;
import org.jspecify.annotations.Nullable;

/**
 * The access-log flag of one request: why the proxy answered itself, or why the upstream's answer
 * was not the upstream's. A pure function over what the exchange recorded.
 */
final class AccessLogFlags {
  private AccessLogFlags() {}

  /**
   * @param set the flag a layer set while handling the request (RL, UO, DENY, FI, NR for a missing
   *     HTTPFault), null when none did
   * @param forwarded the request was routed to a backend endpoint
   * @param status the status the proxy answered with itself when it did, else the response's
   * @return NR (no route, bad backend, no endpoint), UF (connect failed, 503), UR (upstream reset,
   *     502), UT (timeout, 504), DPE (malformed request: 400, 414, 431), the layer's flag, or null
   */
  static @Nullable ResponseFlag flag(@Nullable ResponseFlag set, boolean forwarded, int status) {
    if (set != null) {
      return set;
    }
    if (forwarded) {
      return switch (status) {
        case 502 -> ResponseFlag.UR;
        case 503 -> ResponseFlag.UF;
        case 504 -> ResponseFlag.UT;
        default -> null;
      };
    }
    if (status == 400 || status == 414 || status == 431) {
      return ResponseFlag.DPE;
    }
    return status >= 400 ? ResponseFlag.NR : null;
  }
}
