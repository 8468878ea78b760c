package dev.nodemesh.proxy.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BackoffTest {
  private static List<Long> delays(Backoff b, int n) {
    List<Long> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(b.nextDelayNanos());
    }
    return out;
  }

  @Test
  void growsByOnePointSixUpToTheMaximum() {
    Backoff b = new Backoff(1000, 5000, () -> 0.5); // 0.5 = no jitter
    assertEquals(List.of(1000L, 1600L, 2560L, 4096L, 5000L, 5000L), delays(b, 6));
  }

  @Test
  void jitterStaysWithinTwentyPercent() {
    assertEquals(List.of(800L, 1280L), delays(new Backoff(1000, 5000, () -> 0.0), 2));
    assertEquals(List.of(1199L, 1919L), delays(new Backoff(1000, 5000, () -> 0.9999), 2));
  }

  @Test
  void resetStartsOver() {
    Backoff b = new Backoff(1000, 5000, () -> 0.5);
    delays(b, 4);
    b.reset();
    assertEquals(1000L, b.nextDelayNanos());
  }

  @Test
  void rejectsNonsense() {
    assertThrows(IllegalArgumentException.class, () -> new Backoff(0, 10, () -> 0.5));
    assertThrows(IllegalArgumentException.class, () -> new Backoff(10, 5, () -> 0.5));
  }
}
