/**
 * The L7 path: HTTP/1.1 and HTTP/2 (h2c) proxying for Service ports that have an HTTPRoute. {@link
 * dev.nodemesh.proxy.l7.HttpProxy} is the entry from the outbound listener; {@link
 * dev.nodemesh.proxy.l7.HttpRouter} is the pure routing decision; {@link
 * dev.nodemesh.proxy.l7.RequestHandler} forwards one request at a time (retries, timeouts, header
 * rules) to a pooled upstream from {@link dev.nodemesh.proxy.upstream.UpstreamPools}.
 */
@NullMarked
package dev.nodemesh.proxy.l7;

import org.jspecify.annotations.NullMarked;
