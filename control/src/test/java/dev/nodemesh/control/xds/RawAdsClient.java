package dev.nodemesh.control.xds;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.nodemesh.proxy.identity.NodeToken;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * A delta ADS client that does only what a test tells it: subscribe, ACK, NACK, and hand over each
 * response, so tests can assert exactly what the server sends.
 */
final class RawAdsClient implements AutoCloseable {
  private final BlockingQueue<DeltaDiscoveryResponse> responses = new LinkedBlockingQueue<>();
  private final StreamObserver<DeltaDiscoveryRequest> requests;
  private final Node node;
  private final CompletableFuture<Throwable> error = new CompletableFuture<>();

  RawAdsClient(Channel channel, String nodeName) {
    this(channel, nodeName, null);
  }

  /** With {@code token} sent as the node credential ({@code authorization: Bearer}). */
  RawAdsClient(Channel channel, String nodeName, @Nullable String token) {
    this.node = Node.newBuilder().setId(nodeName).build();
    AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceStub stub =
        AggregatedDiscoveryServiceGrpc.newStub(channel);
    if (token != null) {
      // Plaintext allowed: this client tests the server, over loopback channels without TLS.
      stub = stub.withCallCredentials(new NodeToken(() -> token, true));
    }
    this.requests =
        stub.deltaAggregatedResources(
            new StreamObserver<>() {
              @Override
              public void onNext(DeltaDiscoveryResponse r) {
                responses.add(r);
              }

              @Override
              public void onError(Throwable t) {
                error.complete(t);
              }

              @Override
              public void onCompleted() {}
            });
  }

  synchronized void subscribe(String typeUrl, Map<String, String> initialVersions) {
    requests.onNext(
        DeltaDiscoveryRequest.newBuilder()
            .setNode(node)
            .setTypeUrl(typeUrl)
            .putAllInitialResourceVersions(initialVersions)
            .build());
  }

  synchronized void ack(DeltaDiscoveryResponse r) {
    requests.onNext(
        DeltaDiscoveryRequest.newBuilder()
            .setTypeUrl(r.getTypeUrl())
            .setResponseNonce(r.getNonce())
            .build());
  }

  synchronized void nack(DeltaDiscoveryResponse r, String reason) {
    requests.onNext(
        DeltaDiscoveryRequest.newBuilder()
            .setTypeUrl(r.getTypeUrl())
            .setResponseNonce(r.getNonce())
            .setErrorDetail(com.google.rpc.Status.newBuilder().setCode(3).setMessage(reason))
            .build());
  }

  DeltaDiscoveryResponse next() throws InterruptedException {
    DeltaDiscoveryResponse r = responses.poll(10, TimeUnit.SECONDS);
    assertNotNull(r, "no response within 10 s");
    return r;
  }

  /** The status the server ended the stream with. */
  Status awaitError() throws Exception {
    return Status.fromThrowable(error.get(10, TimeUnit.SECONDS));
  }

  /** Asserts nothing arrives for a while (the server has nothing, or must not, send). */
  void expectNothing(long millis) throws InterruptedException {
    assertNull(responses.poll(millis, TimeUnit.MILLISECONDS));
  }

  static Map<String, String> versions(DeltaDiscoveryResponse r) {
    Map<String, String> v = new TreeMap<>();
    for (Resource res : r.getResourcesList()) {
      v.put(res.getName(), res.getVersion());
    }
    return v;
  }

  @Override
  public synchronized void close() {
    requests.onCompleted();
  }
}
