package dev.nodemesh.control.xds;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.Channel;
import io.grpc.stub.StreamObserver;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A delta ADS client that does only what a test tells it: subscribe, ACK, NACK, and hand over each
 * response, so tests can assert exactly what the server sends.
 */
final class RawAdsClient implements AutoCloseable {
  private final BlockingQueue<DeltaDiscoveryResponse> responses = new LinkedBlockingQueue<>();
  private final StreamObserver<DeltaDiscoveryRequest> requests;
  private final Node node;

  RawAdsClient(Channel channel, String nodeName) {
    this.node = Node.newBuilder().setId(nodeName).build();
    this.requests =
        AggregatedDiscoveryServiceGrpc.newStub(channel)
            .deltaAggregatedResources(
                new StreamObserver<>() {
                  @Override
                  public void onNext(DeltaDiscoveryResponse r) {
                    responses.add(r);
                  }

                  @Override
                  public void onError(Throwable t) {}

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
