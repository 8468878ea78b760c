package dev.nodemesh.bpf.maps;

import java.util.List;

/**
 * A C struct's size and its fields' offsets and sizes in bytes: what a mirror declares and what
 * {@link BtfLayouts} reads from the compiled object, so the two can be compared as values.
 */
public record StructLayout(String name, int size, List<Field> fields) {
  /** One member. */
  public record Field(String name, int offset, int size) {}

  public StructLayout {
    fields = List.copyOf(fields);
  }

  public static StructLayout of(String name, int size, Field... fields) {
    return new StructLayout(name, size, List.of(fields));
  }

  public static Field field(String name, int offset, int size) {
    return new Field(name, offset, size);
  }
}
