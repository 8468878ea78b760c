package dev.nodemesh.model.config;

import java.util.Objects;

/**
 * The identity of a namespaced Kubernetes object; used as a map key (cheap hash of two cached
 * string hashes) wherever "namespace/name" identifies a Pod or Service.
 */
public record NamespacedName(String namespace, String name) {
  public NamespacedName {
    Objects.requireNonNull(namespace, "namespace");
    Objects.requireNonNull(name, "name");
  }

  @Override
  public String toString() {
    return namespace + "/" + name;
  }
}
