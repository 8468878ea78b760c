/**
 * How the proxy reaches an upstream, for every path that leaves it (L4 relays, L7 requests,
 * mirrored copies, HBONE delivery): the pure {@link dev.nodemesh.proxy.upstream.PathDecider} says
 * how (a socket in the source's namespace, a socket in a local destination pod's namespace, or an
 * HBONE stream with the identities both ends must prove), the {@link
 * dev.nodemesh.proxy.upstream.Dialer}s open it, and {@link
 * dev.nodemesh.proxy.upstream.UpstreamPools} keeps HTTP connections for reuse. Nothing here knows a
 * listener, a route or a policy; the HBONE dialer itself lives in {@code tunnel}.
 */
@NullMarked
package dev.nodemesh.proxy.upstream;

import org.jspecify.annotations.NullMarked;
