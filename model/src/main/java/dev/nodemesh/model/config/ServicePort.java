package dev.nodemesh.model.config;

import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * One TCP port of a Service. Exactly one of {@code targetPort} (numeric) and {@code targetPortName}
 * (resolved per endpoint through its container ports) is set; a numeric target port of 0 means
 * "named".
 *
 * @param name empty when the Service leaves the port unnamed
 * @param appProtocol the Service's appProtocol, "tcp" when absent; decides later whether the L7
 *     path may be used
 */
public record ServicePort(
    String name, int port, int targetPort, @Nullable String targetPortName, String appProtocol) {

  public ServicePort {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(appProtocol, "appProtocol");
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port " + port + " out of range 1-65535");
    }
    if ((targetPortName == null) == (targetPort == 0)) {
      throw new IllegalArgumentException(
          "exactly one of targetPort (" + targetPort + ") and targetPortName must be set");
    }
    if (targetPort < 0 || targetPort > 65535) {
      throw new IllegalArgumentException("targetPort " + targetPort + " out of range 1-65535");
    }
  }

  /** A port whose target is a number; the common case. */
  public static ServicePort numeric(String name, int port, int targetPort, String appProtocol) {
    return new ServicePort(name, port, targetPort, null, appProtocol);
  }

  /**
   * The port to connect to on {@code endpoint}, or 0 when the target is named and the endpoint
   * declares no such port (Kubernetes then leaves that endpoint out too).
   */
  public int targetPortOn(Workload endpoint) {
    if (targetPortName == null) {
      return targetPort;
    }
    Integer resolved = endpoint.namedPort(targetPortName);
    return resolved == null ? 0 : resolved;
  }
}
