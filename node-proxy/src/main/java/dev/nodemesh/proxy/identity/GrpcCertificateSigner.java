package dev.nodemesh.proxy.identity;

import dev.nodemesh.api.ca.v1.CertificateServiceGrpc;
import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The CA over gRPC ({@code nodemesh.ca.v1.CertificateService}), the node's token sent as {@code
 * authorization: Bearer <token>} on every call. The token is read from its file on every call, so a
 * rotated Kubernetes projected token is picked up without a restart.
 */
public final class GrpcCertificateSigner implements CertificateSigner {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final long DEADLINE_SECONDS = 15;

  private final CertificateServiceGrpc.CertificateServiceStub stub;

  public GrpcCertificateSigner(Channel channel, Supplier<String> token) {
    this.stub = CertificateServiceGrpc.newStub(channel).withCallCredentials(new BearerToken(token));
  }

  /** The token in {@code file} (surrounding whitespace dropped), read on each call. */
  public static Supplier<String> tokenFile(Path file) {
    return () -> {
      try {
        return Files.readString(file, StandardCharsets.UTF_8).strip();
      } catch (IOException e) {
        throw new IllegalStateException("cannot read the node token " + file + ": " + e, e);
      }
    };
  }

  @Override
  public CompletionStage<CreateCertificateResponse> sign(CreateCertificateRequest request) {
    CompletableFuture<CreateCertificateResponse> result = new CompletableFuture<>();
    stub.withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
        .createCertificate(
            request,
            new StreamObserver<>() {
              @Override
              public void onNext(CreateCertificateResponse value) {
                result.complete(value);
              }

              @Override
              public void onError(Throwable t) {
                result.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                if (!result.isDone()) {
                  result.completeExceptionally(
                      Status.INTERNAL.withDescription("no response").asException());
                }
              }
            });
    return result;
  }

  private static final class BearerToken extends CallCredentials {
    private final Supplier<String> token;

    BearerToken(Supplier<String> token) {
      this.token = token;
    }

    @Override
    public void applyRequestMetadata(
        RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
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
}
