package dev.nodemesh.model.identity;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * A workload's SPIFFE ID, {@code spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>}: the
 * name in the URI SAN of its certificate and the principal that policy matches.
 */
public record SpiffeId(String trustDomain, String namespace, String serviceAccount) {
  private static final String SCHEME = "spiffe://";

  public SpiffeId {
    Objects.requireNonNull(trustDomain, "trustDomain");
    Objects.requireNonNull(namespace, "namespace");
    Objects.requireNonNull(serviceAccount, "serviceAccount");
    if (trustDomain.isEmpty() || namespace.isEmpty() || serviceAccount.isEmpty()) {
      throw new IllegalArgumentException("SPIFFE ID parts must not be empty");
    }
    if ((trustDomain + namespace + serviceAccount).contains("/")) {
      throw new IllegalArgumentException("SPIFFE ID parts must not contain '/'");
    }
  }

  /** The identity of a workload: its namespace and service account ("default" when unset). */
  public static SpiffeId of(String trustDomain, Workload workload) {
    String sa = workload.serviceAccount().isEmpty() ? "default" : workload.serviceAccount();
    return new SpiffeId(trustDomain, workload.namespace(), sa);
  }

  /**
   * Parses {@code spiffe://td/ns/<ns>/sa/<sa>}, the only shape this mesh issues.
   *
   * @throws IllegalArgumentException naming what is wrong
   */
  public static SpiffeId parse(String uri) {
    if (!uri.startsWith(SCHEME)) {
      throw new IllegalArgumentException("not a spiffe:// URI: " + uri);
    }
    String[] parts = uri.substring(SCHEME.length()).split("/", -1);
    if (parts.length != 5 || !parts[1].equals("ns") || !parts[3].equals("sa")) {
      throw new IllegalArgumentException("not spiffe://<td>/ns/<ns>/sa/<sa>: " + uri);
    }
    return new SpiffeId(parts[0], parts[2], parts[4]);
  }

  @Override
  public String toString() {
    return SCHEME + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
  }

  /**
   * The principal of a pod enrolled on this node, from the config's view of it (its service
   * account); null when the config does not know the pod (yet), so rules on principals and
   * namespaces cannot match it. The pod is identified by its listener, the snapshot only supplies
   * its service account, and only if name and namespace agree.
   */
  public static @Nullable SpiffeId ofEnrolledPod(
      ConfigSnapshot snapshot, PodRef pod, String trustDomain) {
    for (InetAddress ip : pod.ips()) {
      Workload w = snapshot.workloadByIp(ip);
      if (w != null && w.name().equals(pod.name()) && w.namespace().equals(pod.namespace())) {
        return of(trustDomain, w);
      }
    }
    return null;
  }
}
