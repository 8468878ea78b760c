package dev.nodemesh.proxy.identity;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/**
 * The node's credential on calls to the control plane, as {@code authorization: Bearer <token>}: on
 * the CA's calls and on the xDS stream. The token is asked for on every call (every new stream), so
 * a file source is read again each time: a Kubernetes projected service-account token is rewritten
 * by the kubelet before it expires, and the next call carries the new one with no restart. A token
 * that cannot be read fails that call with UNAUTHENTICATED, and the caller's retry reads it again.
 */
public final class NodeToken extends CallCredentials {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Supplier<String> token;

  public NodeToken(Supplier<String> token) {
    this.token = token;
  }

  /** The token in {@code file}, surrounding whitespace dropped, read again on every call. */
  public static NodeToken fromFile(Path file) {
    return new NodeToken(read(file));
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
