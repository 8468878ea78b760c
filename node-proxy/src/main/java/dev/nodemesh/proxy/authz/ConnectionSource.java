package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.identity.SpiffeId;
import java.net.InetAddress;
import org.jspecify.annotations.Nullable;

/**
 * Who is connecting, as far as the receiving proxy knows it.
 *
 * @param principal the caller's verified SPIFFE ID: from its certificate (HBONE) or from the in-pod
 *     listener it was captured on (same node); null for plaintext from outside the mesh
 * @param address the caller's IP (policy IP blocks match it; it never establishes identity)
 * @param mutualTls true when the identity came from an mTLS tunnel (or the same node's in-pod
 *     listener), which is what a STRICT peer-authentication mode requires
 */
public record ConnectionSource(
    @Nullable SpiffeId principal, InetAddress address, boolean mutualTls) {}
