package dev.nodemesh.control.store;

import com.google.protobuf.Descriptors.Descriptor;
import dev.nodemesh.api.config.v1.AuthorizationPolicy;
import dev.nodemesh.api.config.v1.HttpFault;
import dev.nodemesh.api.config.v1.HttpRoute;
import dev.nodemesh.api.config.v1.PeerAuthentication;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.TrafficPolicy;
import dev.nodemesh.api.config.v1.Workload;
import org.jspecify.annotations.Nullable;

/** The resource types the control plane serves, each with its xDS type URL. */
public enum ResourceType {
  WORKLOAD(Workload.getDescriptor()),
  SERVICE(Service.getDescriptor()),
  AUTHORIZATION_POLICY(AuthorizationPolicy.getDescriptor()),
  PEER_AUTHENTICATION(PeerAuthentication.getDescriptor()),
  HTTP_ROUTE(HttpRoute.getDescriptor()),
  TRAFFIC_POLICY(TrafficPolicy.getDescriptor()),
  HTTP_FAULT(HttpFault.getDescriptor());

  private final String typeUrl;

  ResourceType(Descriptor descriptor) {
    this.typeUrl = "type.googleapis.com/" + descriptor.getFullName();
  }

  public String typeUrl() {
    return typeUrl;
  }

  public static @Nullable ResourceType ofTypeUrl(String typeUrl) {
    for (ResourceType t : values()) {
      if (t.typeUrl.equals(typeUrl)) {
        return t;
      }
    }
    return null;
  }
}
