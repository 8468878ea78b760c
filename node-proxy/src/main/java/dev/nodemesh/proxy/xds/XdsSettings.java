package dev.nodemesh.proxy.xds;

import java.time.Duration;

/**
 * How the proxy's xDS client behaves ({@code --initial-fetch-timeout}).
 *
 * @param initialFetchTimeout how long the first config waits for every subscribed kind before the
 *     kinds that did arrive are applied with the missing ones empty (Envoy's {@code
 *     initial_fetch_timeout}, same default); {@link Duration#ZERO} waits for ever. It covers
 *     version skew: an older control plane that does not serve a kind this proxy subscribes to
 *     never answers for it, and without a bound the proxy would never apply its first config.
 */
public record XdsSettings(Duration initialFetchTimeout) {

  /** Envoy's default initial fetch timeout. */
  public static final Duration DEFAULT_INITIAL_FETCH_TIMEOUT = Duration.ofSeconds(15);

  public static final XdsSettings DEFAULT = new XdsSettings(DEFAULT_INITIAL_FETCH_TIMEOUT);

  public XdsSettings {
    if (initialFetchTimeout.isNegative()) {
      throw new IllegalArgumentException("the initial fetch timeout must not be negative");
    }
  }
}
