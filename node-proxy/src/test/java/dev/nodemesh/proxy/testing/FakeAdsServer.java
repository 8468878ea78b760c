package dev.nodemesh.proxy.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.google.protobuf.Any;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.kind.WorkloadKind;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A control plane the xDS client tests script by hand: an in-process gRPC server whose delta ADS
 * stream hands each client stream and every request to the test, and sends only what the test
 * sends. Each response gets the next nonce, and {@link #respond} waits for the client's ACK or NACK
 * of it (the client sends one only after it has handled the response), so a test steps in lock with
 * the client. Waits are bounded (10 s) and fail the test.
 */
public final class FakeAdsServer implements AutoCloseable {
  private final BlockingQueue<DeltaDiscoveryRequest> requests = new LinkedBlockingQueue<>();
  private final BlockingQueue<StreamObserver<DeltaDiscoveryResponse>> streams =
      new LinkedBlockingQueue<>();
  private final Server server;
  private final ManagedChannel channel;
  private int nonce;

  private FakeAdsServer(String name) throws IOException {
    server =
        InProcessServerBuilder.forName(name)
            .addService(
                new AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase() {
                  @Override
                  public StreamObserver<DeltaDiscoveryRequest> deltaAggregatedResources(
                      StreamObserver<DeltaDiscoveryResponse> out) {
                    streams.add(out);
                    return new StreamObserver<>() {
                      @Override
                      public void onNext(DeltaDiscoveryRequest r) {
                        requests.add(r);
                      }

                      @Override
                      public void onError(Throwable t) {}

                      @Override
                      public void onCompleted() {}
                    };
                  }
                })
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
  }

  public static FakeAdsServer start() throws IOException {
    return new FakeAdsServer(InProcessServerBuilder.generateName());
  }

  /** The channel for the client under test. */
  public ManagedChannel channel() {
    return channel;
  }

  /**
   * Waits for the client's stream and its subscriptions, one per kind in {@link ResourceKinds#ALL}
   * order; returns the stream to respond on.
   */
  public StreamObserver<DeltaDiscoveryResponse> awaitSubscriptions() throws InterruptedException {
    StreamObserver<DeltaDiscoveryResponse> out = streams.poll(10, TimeUnit.SECONDS);
    assertNotNull(out);
    for (ResourceKind<?, ?> k : ResourceKinds.ALL) {
      assertEquals(k.typeUrl(), next().getTypeUrl(), "subscriptions");
    }
    return out;
  }

  /** The client's next request. */
  public DeltaDiscoveryRequest next() throws InterruptedException {
    DeltaDiscoveryRequest r = requests.poll(10, TimeUnit.SECONDS);
    assertNotNull(r, "the client answers");
    return r;
  }

  /**
   * Sends {@code resources} of {@code kind} as one response and returns the client's answer to it
   * (the same nonce and type URL; an ACK, or a NACK with its error detail).
   */
  public DeltaDiscoveryRequest respond(
      StreamObserver<DeltaDiscoveryResponse> out, ResourceKind<?, ?> kind, Resource... resources)
      throws InterruptedException {
    DeltaDiscoveryRequest answer =
        respond(
            out,
            DeltaDiscoveryResponse.newBuilder()
                .setTypeUrl(kind.typeUrl())
                .addAllResources(List.of(resources)));
    assertEquals(kind.typeUrl(), answer.getTypeUrl());
    return answer;
  }

  /** Sends {@code response} with the next nonce; returns the client's answer to it. */
  public DeltaDiscoveryRequest respond(
      StreamObserver<DeltaDiscoveryResponse> out, DeltaDiscoveryResponse.Builder response)
      throws InterruptedException {
    String n = Integer.toString(++nonce);
    out.onNext(response.setNonce(n).build());
    DeltaDiscoveryRequest answer = next();
    assertEquals(n, answer.getResponseNonce());
    return answer;
  }

  /** Workload default/web (app=web, 10.0.0.1, on node n1) as version 1 of a resource. */
  public static Resource webWorkload() throws IOException {
    Workload w =
        new Workload(
            "uid-web",
            "web",
            "default",
            List.of(InetAddress.getByName("10.0.0.1")),
            Map.of("app", "web"),
            "default",
            "n1",
            Map.of());
    return Resource.newBuilder()
        .setName("default/web")
        .setVersion("1")
        .setResource(Any.pack(WorkloadKind.encode(w, true)))
        .build();
  }

  /** Shuts the channel, then the server, down (the client is the test's to close first). */
  @Override
  public void close() throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
