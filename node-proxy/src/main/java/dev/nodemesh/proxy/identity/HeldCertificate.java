package dev.nodemesh.proxy.identity;

import dev.nodemesh.model.identity.SpiffeId;
import java.time.Instant;

/**
 * What {@code /config_dump} shows of a certificate this node holds: never the key.
 *
 * @param serial hexadecimal
 */
public record HeldCertificate(SpiffeId id, String serial, Instant notAfter) {}
