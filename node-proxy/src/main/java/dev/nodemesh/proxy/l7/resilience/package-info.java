/**
 * The L7 proxy's per-Service resilience, configured by {@code TrafficPolicy}: load balancing (round
 * robin, random, least request and peak EWMA by power of two choices, ring hash), locality
 * preference, circuit breaking, outlier detection, the retry budget and backoff, and token-bucket
 * rate limiting. The algorithms are pure or take their clock and randomness as arguments, so each
 * is unit-tested on its own; {@link dev.nodemesh.proxy.l7.resilience.ServiceTraffic} puts them
 * together for one Service, shared by every event loop of a proxy.
 */
@NullMarked
package dev.nodemesh.proxy.l7.resilience;

import org.jspecify.annotations.NullMarked;
