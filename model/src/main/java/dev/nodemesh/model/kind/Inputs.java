package dev.nodemesh.model.kind;

import java.util.List;

/**
 * What a source holds of the input-only slots when it resolves a record ({@link
 * ResourceKind#resolve}): the loader the whole directory's, the Kubernetes source its informer
 * caches'.
 */
public interface Inputs {
  <R> List<R> of(InputSlot<R> slot);

  /** No input records at all. */
  Inputs NONE =
      new Inputs() {
        @Override
        public <R> List<R> of(InputSlot<R> slot) {
          return List.of();
        }
      };
}
