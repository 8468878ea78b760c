package dev.nodemesh.proxy.outbound;

import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.Workload;
import java.net.InetSocketAddress;

/**
 * What the outbound listener does with one connection. Sealed so the listener's switch has to
 * handle every outcome, and a new one cannot be added without the compiler finding the callers.
 */
public sealed interface Route {

  /** The destination was a service VIP:port; connect to {@code upstream} on {@code endpoint}. */
  record ToService(
      MeshService service, ServicePort port, Workload endpoint, InetSocketAddress upstream)
      implements Route {}

  /** The destination is a mesh pod's own IP (pod-to-pod, no service); connect to it as dialled. */
  record ToWorkload(Workload workload, InetSocketAddress upstream) implements Route {}

  /** A service VIP:port with no usable endpoint: refuse the connection, as kube-proxy does. */
  record NoEndpoints(MeshService service, ServicePort port) implements Route {}

  /** The VIP belongs to a service that has no such port: refuse the connection. */
  record UnknownServicePort(MeshService service, int port) implements Route {}

  /**
   * No config is in force yet (nothing saved, nothing from the control plane) and the destination
   * is in the service range: a VIP the proxy cannot route yet. Refused (RST), never passed through,
   * so no connection reaches a VIP untranslated and leaves an un-NATed conntrack entry behind.
   */
  record NoConfig(InetSocketAddress original) implements Route {}

  /** Not a mesh destination: connect to the original destination unchanged. */
  record Passthrough(InetSocketAddress upstream) implements Route {}
}
