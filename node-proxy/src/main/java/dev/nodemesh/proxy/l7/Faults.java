package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.HttpFault;
import java.util.concurrent.ThreadLocalRandom;

/** The per-request draw of a fault's percentage. */
final class Faults {
  private Faults() {}

  /** True for {@code perMillion} of the calls on average (every call at 100%, none at 0). */
  static boolean roll(int perMillion) {
    return perMillion >= HttpFault.MILLION
        || (perMillion > 0 && ThreadLocalRandom.current().nextInt(HttpFault.MILLION) < perMillion);
  }
}
