package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.NamespacedName;
import java.util.random.RandomGenerator;
import org.jspecify.annotations.Nullable;

/**
 * The fault-injection layer: which of a rule's HTTPFault's delay and abort apply to one request,
 * each drawn by its percentage. The exchange then waits the delay (a timer, flag DI) and answers
 * the abort itself (flag FI) instead of forwarding.
 */
final class Faults {
  private Faults() {}

  /**
   * What to inject into one request.
   *
   * @param missing the rule's HTTPFault is not in the snapshot: Gateway API makes the rule answer
   *     500
   * @param delayed the delay was drawn: wait {@code delayNanos} first
   * @param abort answer this instead of forwarding; null to forward
   */
  record Draw(boolean missing, boolean delayed, long delayNanos, HttpFault.@Nullable Abort abort) {
    static final Draw NONE = new Draw(false, false, 0, null);
  }

  private static final Draw MISSING = new Draw(true, false, 0, null);

  /**
   * The draw for a rule referring to {@code ref} (null: no fault): {@link Draw#NONE}, a missing
   * draw when the HTTPFault is not in the snapshot, or what the percentages drew.
   */
  static Draw draw(ConfigSnapshot snapshot, @Nullable NamespacedName ref, RandomGenerator random) {
    if (ref == null) {
      return Draw.NONE;
    }
    HttpFault fault = snapshot.httpFault(ref);
    if (fault == null) {
      return MISSING;
    }
    HttpFault.Abort abort = fault.abort();
    boolean aborting = abort != null && roll(abort.perMillion(), random);
    HttpFault.Delay delay = fault.delay();
    long delayNanos = -1;
    if (delay != null && roll(delay.perMillion(), random)) {
      delayNanos = delay.fixed().toNanos();
    }
    boolean delayed = delayNanos >= 0;
    if (!aborting && !delayed) {
      return Draw.NONE;
    }
    return new Draw(false, delayed, Math.max(delayNanos, 0), aborting ? abort : null);
  }

  /** True for {@code perMillion} of the calls on average (every call at 100%, none at 0). */
  static boolean roll(int perMillion, RandomGenerator random) {
    return perMillion >= HttpFault.MILLION
        || (perMillion > 0 && random.nextInt(HttpFault.MILLION) < perMillion);
  }
}
