package dev.nodemesh.model.identity;

import java.net.InetAddress;
import java.util.List;

/**
 * What {@link SpiffeId#ofEnrolledPod} needs to know of a pod on this node: its name, namespace and
 * IPs. An interface so the identity lookup does not depend on the node agent's pod record (which
 * holds a network namespace); the agent's {@code EnrolledPod} implements it.
 */
public interface PodRef {
  String name();

  String namespace();

  List<InetAddress> ips();
}
