package dev.nodemesh.proxy.metrics;

import dev.nodemesh.model.identity.SpiffeId;
import org.jspecify.annotations.Nullable;

/**
 * The labels of every connection metric. Bounded by design: workloads, namespaces and services come
 * from config, never from addresses or ports, so a port scan cannot explode cardinality.
 *
 * <p>The principals are SPIFFE IDs ({@code spiffe://<trust-domain>/ns/<ns>/sa/<sa>}), so they are
 * bounded by the service accounts in the mesh (at most one value per workload, usually fewer), and
 * never derived from an address: on the source side the source principal is the local pod's
 * identity and the destination principal the identity the destination workload must prove (the
 * tunnel refuses any other peer, so on a relayed connection it is the proven one); on the
 * destination side the source principal is what the caller proved over HBONE. {@link #UNKNOWN} when
 * there is none: identity off, plaintext from outside the mesh, or a workload the config does not
 * know.
 *
 * @param reporter "source" when measured on the outbound side, "destination" on the inbound side
 * @param destinationService "unknown" for traffic not addressed to a service VIP
 */
public record TrafficLabels(
    String reporter,
    String sourceWorkload,
    String sourceNamespace,
    String destinationWorkload,
    String destinationNamespace,
    String destinationService,
    String sourcePrincipal,
    String destinationPrincipal) {
  public static final String UNKNOWN = "unknown";

  /** The label value of a principal: its SPIFFE URI, or {@link #UNKNOWN} for none. */
  public static String principal(@Nullable SpiffeId id) {
    return id == null ? UNKNOWN : id.toString();
  }
}
