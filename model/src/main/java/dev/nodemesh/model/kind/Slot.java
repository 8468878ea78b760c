package dev.nodemesh.model.kind;

/**
 * Where the records that YAML kinds parse go: a wire kind ({@link ResourceKind}), or a set of
 * records that only shape other kinds and never travel themselves ({@link InputSlot}, e.g.
 * ReferenceGrants, which decide which of a route's backendRefs are permitted). Several YAML kinds
 * may feed one slot (HTTPRoute and GRPCRoute both feed the {@code HttpRoute} wire kind), and the
 * slot keeps them in document order.
 *
 * @param <R> the record type of the slot
 */
public sealed interface Slot<R> permits ResourceKind, InputSlot {
  /** A name for messages and tests. */
  String name();
}
