package dev.nodemesh.control.ca;

import dev.nodemesh.api.config.v1.Workload;
import org.jspecify.annotations.Nullable;

/**
 * The workloads the control plane knows, as it last pushed them to the nodes: the CA derives
 * identities and checks node placement from here. Must be safe to call from any thread without
 * blocking.
 */
@FunctionalInterface
public interface WorkloadDirectory {
  @Nullable Workload find(String namespace, String name);
}
