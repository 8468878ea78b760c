/**
 * The L7 path: HTTP/1.1 and HTTP/2 (h2c) proxying for Service ports that have an HTTPRoute. {@link
 * dev.nodemesh.proxy.l7.HttpProxy} is the entry from the outbound listener; {@link
 * dev.nodemesh.proxy.l7.HttpRouter} is the pure routing decision (to a backend Service); {@link
 * dev.nodemesh.proxy.l7.RequestHandler} owns a downstream connection or stream and drives one
 * {@link dev.nodemesh.proxy.l7.Exchange} state machine per request, which runs the route's layers
 * (each its own class: endpoint pick, rate limit, retries and budget, replay buffer, header
 * filters, authorization, faults, breaker claims, local replies, access-log flags) and reaches its
 * upstream only through {@link dev.nodemesh.proxy.l7.ExchangeUpstreams}.
 */
@NullMarked
package dev.nodemesh.proxy.l7;

import org.jspecify.annotations.NullMarked;
