package dev.nodemesh.proxy.metrics;

/**
 * The labels of every connection metric. Bounded by design: workloads, namespaces and services come
 * from config, never from addresses or ports, so a port scan cannot explode cardinality.
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
    String destinationService) {
  public static final String UNKNOWN = "unknown";
}
