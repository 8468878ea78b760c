package dev.nodemesh.model.kind;

/**
 * A slot of records that are read by the sources while resolving other kinds' records (see {@link
 * ResourceKind#inputs()}) but are never sent to a proxy.
 *
 * @param <R> the record type
 */
public record InputSlot<R>(String name) implements Slot<R> {
  @Override
  public String toString() {
    return name;
  }
}
