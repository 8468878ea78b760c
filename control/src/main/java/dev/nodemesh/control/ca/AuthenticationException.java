package dev.nodemesh.control.ca;

/** A bearer token that proves no node; the message says why, for the control plane's log only. */
public final class AuthenticationException extends Exception {
  private static final long serialVersionUID = 1L;

  public AuthenticationException(String message) {
    super(message);
  }

  public AuthenticationException(String message, Throwable cause) {
    super(message, cause);
  }
}
