package dev.nodemesh.proxy.inbound;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * Identifies the local workload an inbound connection is for, from its original destination.
 * Limits: it does not check that the workload runs on this node, nor apply policy; both belong to
 * later steps that take this decision as input.
 */
public final class InboundRouter {
  private InboundRouter() {}

  public static InboundRoute route(ConfigSnapshot snapshot, InetSocketAddress originalDst) {
    InetAddress ip = originalDst.getAddress();
    Workload workload = ip == null ? null : snapshot.workloadByIp(ip);
    return workload == null
        ? new InboundRoute.UnknownDestination(originalDst)
        : new InboundRoute.ToLocalWorkload(workload, originalDst);
  }
}
