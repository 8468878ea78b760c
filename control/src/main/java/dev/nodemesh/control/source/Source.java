package dev.nodemesh.control.source;

import dev.nodemesh.control.enrolment.EnrolmentRegistry;
import dev.nodemesh.control.store.ResourceStore;
import java.util.concurrent.Executor;
import org.jspecify.annotations.Nullable;

/**
 * Where the control plane's resources come from. A source writes to the store only through tasks on
 * the control-plane executor (the store is confined to it), and does its own I/O elsewhere.
 */
public interface Source extends AutoCloseable {
  /** Starts feeding {@code store}; returns without waiting for the first content. */
  void start(ResourceStore store, Executor executor) throws Exception;

  /** True once the first complete content is in the store (initial lists synced, files read). */
  boolean ready();

  /** A short name for logs. */
  String describe();

  /**
   * The enrolment reports this source marks workloads captured by (a workload is captured only once
   * its node's proxy reports it enrolled); null when capture follows the scope alone. The control
   * plane records the nodes' reports into it.
   */
  default @Nullable EnrolmentRegistry enrolments() {
    return null;
  }

  @Override
  void close();
}
