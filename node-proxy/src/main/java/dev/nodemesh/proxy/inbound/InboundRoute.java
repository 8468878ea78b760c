package dev.nodemesh.proxy.inbound;

import dev.nodemesh.model.config.Workload;
import java.net.InetSocketAddress;

/** What the inbound listener knows about the pod a connection is for. */
public sealed interface InboundRoute {

  /** The destination IP is a workload in the snapshot; deliver to {@code upstream} in it. */
  record ToLocalWorkload(Workload workload, InetSocketAddress upstream) implements InboundRoute {}

  /**
   * The snapshot does not (yet) know this IP, e.g. a pod that started before its config arrived.
   * The proxy still delivers to {@code upstream} inside the pod, labelling metrics "unknown".
   */
  record UnknownDestination(InetSocketAddress upstream) implements InboundRoute {}
}
