package dev.nodemesh.proxy.l4;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TrafficPolicy;
import java.time.Duration;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/** Which idle timeout an L4 relay gets: its Service's TrafficPolicy's, else the proxy's flag. */
class RelayIdleTimeoutForServiceTest {
  private static final Duration FLAG = Duration.ofHours(1);
  private static final NamespacedName DB = new NamespacedName("shop", "db");
  private static final NamespacedName WEB = new NamespacedName("shop", "web");
  private static final NamespacedName QUEUE = new NamespacedName("shop", "queue");

  private static TrafficPolicy policy(String service, @Nullable Duration idle) {
    return new TrafficPolicy(
        service,
        "shop",
        service,
        TrafficPolicy.LoadBalancer.DEFAULT,
        null,
        null,
        TrafficPolicy.Retry.DEFAULT,
        null,
        idle);
  }

  private static final ConfigSnapshot SNAPSHOT =
      new ConfigSnapshot(
          1,
          List.of(),
          List.of(),
          List.of(),
          List.of(),
          List.of(),
          List.of(
              policy("db", Duration.ofSeconds(30)),
              policy("web", null),
              policy("queue", Duration.ZERO)),
          List.of());

  @Test
  void aServicesOwnTimeoutWinsElseTheFlag() {
    assertEquals(Duration.ofSeconds(30), Relays.idleTimeout(SNAPSHOT, DB, FLAG));
    assertEquals(Duration.ZERO, Relays.idleTimeout(SNAPSHOT, QUEUE, FLAG), "0s: never");
    assertEquals(FLAG, Relays.idleTimeout(SNAPSHOT, WEB, FLAG), "a policy without the field");
    assertEquals(
        FLAG, Relays.idleTimeout(SNAPSHOT, new NamespacedName("shop", "other"), FLAG), "no policy");
    assertEquals(FLAG, Relays.idleTimeout(SNAPSHOT, null, FLAG), "no Service (a pod IP)");
    assertEquals(
        Duration.ZERO, Relays.idleTimeout(SNAPSHOT, WEB, Duration.ZERO), "the flag's 0s (off) too");
  }
}
