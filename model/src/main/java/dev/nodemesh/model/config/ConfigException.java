package dev.nodemesh.model.config;

import java.util.List;

/**
 * A config directory was rejected. Carries every reason found, each naming the file and the field
 * path, so a user fixes them all in one round instead of one per reload.
 */
public final class ConfigException extends Exception {
  private static final long serialVersionUID = 1L;

  @SuppressWarnings("serial") // List.copyOf of Strings is serializable in practice
  private final List<String> errors;

  public ConfigException(List<String> errors) {
    super(String.join("\n", errors));
    this.errors = List.copyOf(errors);
    if (this.errors.isEmpty()) {
      throw new IllegalArgumentException("a ConfigException needs at least one reason");
    }
  }

  /** One line per problem, in file order. */
  public List<String> errors() {
    return errors;
  }
}
