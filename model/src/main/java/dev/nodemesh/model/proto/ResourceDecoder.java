package dev.nodemesh.model.proto;

import java.util.List;

/**
 * Where the problems of one xDS response (or one saved config) collect while its resources are
 * decoded, each kind by its own descriptor ({@code model.kind.ResourceKind#decode}). It hands each
 * resource a {@link ProtoFields}, which words every problem as {@code <Type> <resource name>:
 * <field>: <problem>} so a NACK names each bad resource and field.
 *
 * <p>Limits: not thread-safe; one decoder per response, decoded on one thread.
 */
public final class ResourceDecoder {
  private final List<String> errors;

  /**
   * @param errors where every problem is appended
   */
  public ResourceDecoder(List<String> errors) {
    this.errors = errors;
  }

  /** The field checks for one resource of kind {@code type} named {@code resourceName}. */
  public ProtoFields fields(String type, String resourceName) {
    return new ProtoFields(errors, type, resourceName);
  }
}
