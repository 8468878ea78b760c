package dev.nodemesh.model.cni;

import java.io.IOException;

/**
 * A text {@link JsonTrees#read} refused: not JSON (RFC 8259, UTF-8), or, as the subclass {@link
 * JsonLimitException}, JSON beyond the reader's {@link JsonTrees.Limits}. The message is the reason
 * and where in the text (line and column, counted in bytes), never the text itself, so it can go
 * into an error object as it is.
 */
public class MalformedJsonException extends IOException {
  private static final long serialVersionUID = 1L;

  private final String reason;
  private final String message;

  MalformedJsonException(String reason, String where) {
    super(reason + " " + where);
    this.reason = reason;
    this.message = reason + " " + where;
  }

  /** The reason and where it is; never null. */
  @Override
  public String getMessage() {
    return message;
  }

  /** What is wrong, without the position. */
  public String reason() {
    return reason;
  }

  /** Well-formed so far, but nested deeper, or with a longer string or number, than allowed. */
  public static final class JsonLimitException extends MalformedJsonException {
    private static final long serialVersionUID = 1L;

    JsonLimitException(String reason, String where) {
      super(reason, where);
    }
  }
}
