package dev.nodemesh.model.config;

import java.util.Map;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * Whether a workload accepts plaintext ({@code security.nodemesh.dev/v1alpha1 PeerAuthentication}):
 * STRICT accepts only connections whose identity the proxy verified (HBONE mTLS, or the same node's
 * in-pod listener); PERMISSIVE also accepts plaintext captured on 15006. Scope, most specific
 * first: a selector in the workload's namespace, no selector in the workload's namespace, no
 * selector in the root namespace (mesh-wide). With none, PERMISSIVE.
 *
 * @param selector matchLabels; null when absent (namespace- or mesh-wide). An empty map is treated
 *     as absent.
 */
public record PeerAuthentication(
    String name, String namespace, @Nullable Map<String, String> selector, Mode mode) {

  public enum Mode {
    STRICT,
    PERMISSIVE
  }

  public PeerAuthentication {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    selector = selector == null || selector.isEmpty() ? null : Map.copyOf(selector);
    Objects.requireNonNull(mode, "mode");
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }
}
