package dev.nodemesh.proxy.identity;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's credential on calls to the control plane, as {@code authorization: Bearer <token>}: on
 * the CA's calls and on the xDS stream. The token is asked for on every call (every new stream), so
 * a file source is read again each time: a Kubernetes projected service-account token is rewritten
 * by the kubelet before it expires, and the next call carries the new one with no restart. A token
 * that cannot be read fails that call with UNAUTHENTICATED, and the caller's retry reads it again.
 *
 * <p>The token is a credential for the node's workloads, so it goes only over a transport that grpc
 * reports as private ({@link SecurityLevel#PRIVACY_AND_INTEGRITY}: TLS, or in-process). Over
 * plaintext the call fails UNAUTHENTICATED without sending it, unless {@code allowPlaintext} says
 * otherwise ({@code --insecure-plaintext-token}, for tests and a control plane on the same host);
 * then the first such call logs a warning.
 */
public final class NodeToken extends CallCredentials {
  private static final Logger log = LoggerFactory.getLogger(NodeToken.class);

  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Supplier<String> token;
  private final boolean allowPlaintext;
  private final AtomicBoolean warned = new AtomicBoolean();

  /** A token that is sent over TLS (or in-process) only. */
  public NodeToken(Supplier<String> token) {
    this(token, false);
  }

  public NodeToken(Supplier<String> token, boolean allowPlaintext) {
    this.token = token;
    this.allowPlaintext = allowPlaintext;
  }

  /** The token in {@code file}, surrounding whitespace dropped, read again on every call. */
  public static NodeToken fromFile(Path file) {
    return new NodeToken(read(file));
  }

  /** As {@link #fromFile(Path)}, sent over plaintext too when {@code allowPlaintext}. */
  public static NodeToken fromFile(Path file, boolean allowPlaintext) {
    return new NodeToken(read(file), allowPlaintext);
  }

  /** {@code file}'s token as a supplier that reads it on each {@code get()}. */
  public static Supplier<String> read(Path file) {
    return () -> {
      String t;
      try {
        t = Files.readString(file, StandardCharsets.UTF_8).strip();
      } catch (IOException e) {
        throw new IllegalStateException("cannot read the node token " + file + ": " + e, e);
      }
      if (t.isEmpty()) {
        throw new IllegalStateException("the node token " + file + " is empty");
      }
      return t;
    };
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
    if (requestInfo.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
      if (!allowPlaintext) {
        applier.fail(
            Status.UNAUTHENTICATED.withDescription(
                "refusing to send the node token to "
                    + requestInfo.getAuthority()
                    + " over a connection without TLS (security level "
                    + requestInfo.getSecurityLevel()
                    + "); give the control plane's root (--ca-root), or"
                    + " --insecure-plaintext-token where plaintext is meant"));
        return;
      }
      if (warned.compareAndSet(false, true)) {
        log.warn(
            "INSECURE: sending the node token to {} over plaintext (--insecure-plaintext-token);"
                + " anyone on the path can read it and act as this node",
            requestInfo.getAuthority());
      }
    }
    // On the application executor: reading the file is blocking I/O, not for a transport thread.
    appExecutor.execute(
        () -> {
          try {
            Metadata headers = new Metadata();
            headers.put(AUTHORIZATION, "Bearer " + token.get());
            applier.apply(headers);
          } catch (RuntimeException e) {
            applier.fail(Status.UNAUTHENTICATED.withDescription(e.getMessage()).withCause(e));
          }
        });
  }
}
