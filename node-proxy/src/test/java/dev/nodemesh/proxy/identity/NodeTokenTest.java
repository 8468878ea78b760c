package dev.nodemesh.proxy.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.ca.v1.CertificateServiceGrpc;
import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import io.grpc.Contexts;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node's token file is read on every certificate request, so a projected service-account token
 * the kubelet rewrote is the one the next request carries; a missing or empty file fails that
 * request as UNAUTHENTICATED before anything is sent. Real gRPC calls, in process.
 */
class NodeTokenTest {
  @TempDir Path dir;

  private final List<String> seen = new CopyOnWriteArrayList<>();
  private Server server;
  private ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    String name = InProcessServerBuilder.generateName();
    CertificateServiceGrpc.CertificateServiceImplBase ca =
        new CertificateServiceGrpc.CertificateServiceImplBase() {
          @Override
          public void createCertificate(
              CreateCertificateRequest request,
              StreamObserver<CreateCertificateResponse> response) {
            response.onNext(CreateCertificateResponse.getDefaultInstance());
            response.onCompleted();
          }
        };
    ServerInterceptor record =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            seen.add(String.valueOf(headers.get(NodeToken.AUTHORIZATION)));
            return Contexts.interceptCall(io.grpc.Context.current(), call, headers, next);
          }
        };
    server =
        InProcessServerBuilder.forName(name)
            .directExecutor()
            .addService(ServerInterceptors.intercept(ca, record))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private void sign(GrpcCertificateSigner signer) throws Exception {
    signer
        .sign(CreateCertificateRequest.getDefaultInstance())
        .toCompletableFuture()
        .get(10, TimeUnit.SECONDS);
  }

  @Test
  void aRotatedTokenFileIsReadAgainOnTheNextRequest() throws Exception {
    Path token = dir.resolve("token");
    Files.writeString(token, "first-token\n");
    GrpcCertificateSigner signer =
        new GrpcCertificateSigner(channel, GrpcCertificateSigner.tokenFile(token));
    sign(signer);
    // The kubelet rewrites a projected token by swapping a symlink; a plain rewrite is the same to
    // a reader that opens the path each time.
    Path next = dir.resolve("token.next");
    Files.writeString(next, "  second-token  \n");
    Files.move(next, token, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    sign(signer);
    sign(signer);
    assertEquals(List.of("Bearer first-token", "Bearer second-token", "Bearer second-token"), seen);
  }

  @Test
  void aMissingOrEmptyTokenFailsTheRequestUnauthenticatedAndSendsNothing() throws Exception {
    Path token = dir.resolve("token");
    GrpcCertificateSigner signer =
        new GrpcCertificateSigner(channel, GrpcCertificateSigner.tokenFile(token));
    ExecutionException e = assertThrows(ExecutionException.class, () -> sign(signer));
    assertEquals(Status.Code.UNAUTHENTICATED, Status.fromThrowable(e.getCause()).getCode());
    Files.writeString(token, "\n");
    e = assertThrows(ExecutionException.class, () -> sign(signer));
    assertEquals(Status.Code.UNAUTHENTICATED, Status.fromThrowable(e.getCause()).getCode());
    assertEquals(List.of(), seen, "no call reached the CA");
    // Once the file appears, the same signer works.
    Files.writeString(token, "late-token");
    sign(signer);
    assertEquals(List.of("Bearer late-token"), seen);
  }

  /** The same CA behind a plaintext Netty server on loopback. */
  private Server plaintextServer() throws Exception {
    CertificateServiceGrpc.CertificateServiceImplBase ca =
        new CertificateServiceGrpc.CertificateServiceImplBase() {
          @Override
          public void createCertificate(
              CreateCertificateRequest request,
              StreamObserver<CreateCertificateResponse> response) {
            response.onNext(CreateCertificateResponse.getDefaultInstance());
            response.onCompleted();
          }
        };
    ServerInterceptor record =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            seen.add(String.valueOf(headers.get(NodeToken.AUTHORIZATION)));
            return Contexts.interceptCall(io.grpc.Context.current(), call, headers, next);
          }
        };
    return io.grpc.netty.NettyServerBuilder.forAddress(
            new java.net.InetSocketAddress("127.0.0.1", 0))
        .addService(ServerInterceptors.intercept(ca, record))
        .build()
        .start();
  }

  @Test
  void theTokenIsNotSentOverPlaintextUnlessAllowed() throws Exception {
    Server plain = plaintextServer();
    ManagedChannel toPlain =
        io.grpc.Grpc.newChannelBuilderForAddress(
                "127.0.0.1", plain.getPort(), io.grpc.InsecureChannelCredentials.create())
            .build();
    try {
      Path token = dir.resolve("token");
      Files.writeString(token, "secret-token");
      GrpcCertificateSigner refused =
          new GrpcCertificateSigner(toPlain, GrpcCertificateSigner.tokenFile(token));
      ExecutionException e = assertThrows(ExecutionException.class, () -> sign(refused));
      Status st = Status.fromThrowable(e.getCause());
      assertEquals(Status.Code.UNAUTHENTICATED, st.getCode());
      assertTrue(String.valueOf(st.getDescription()).contains("--insecure-plaintext-token"));
      assertEquals(List.of(), seen, "nothing reached the server, so no token was sent");

      GrpcCertificateSigner allowed =
          new GrpcCertificateSigner(toPlain, GrpcCertificateSigner.tokenFile(token), true);
      sign(allowed);
      assertEquals(List.of("Bearer secret-token"), seen);
    } finally {
      toPlain.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      plain.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
