package dev.nodemesh.control.ca;

import java.security.GeneralSecurityException;

/** A CSR the CA will not sign: unparsable, a bad signature, or a key it does not accept. */
public final class InvalidCsrException extends GeneralSecurityException {
  private static final long serialVersionUID = 1L;

  public InvalidCsrException(String message) {
    super(message);
  }

  public InvalidCsrException(String message, Throwable cause) {
    super(message, cause);
  }
}
