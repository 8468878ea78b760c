package dev.nodemesh.control.xds;

import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.translate.NodeViews;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources} for many
 * node proxies. Each stream is one {@link NodeStream}; the node is identified by {@code node.id}
 * (or, failing that, the {@code NODE_NAME} metadata field) of its first request, and a stream
 * without either is refused. The state-of-the-world method is not served.
 *
 * <p>Threading: every request, stream event and {@link #push} runs on {@code executor}, which must
 * run one task at a time; gRPC callbacks only hop onto it. Nothing in a task blocks: a response is
 * written only when its stream is ready (see {@link NodeStream}), so a slow node never holds up the
 * others.
 */
public final class DeltaAdsServer
    extends AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(DeltaAdsServer.class);

  private final Executor executor;
  private final LongSupplier nanoClock;
  private final XdsMetrics metrics;
  private final Set<NodeStream> streams = ConcurrentHashMap.newKeySet();
  private final Map<String, String> lastNacks = new ConcurrentHashMap<>();
  private @Nullable NodeViews views;

  public DeltaAdsServer(Executor executor, LongSupplier nanoClock, MeterRegistry registry) {
    this.executor = executor;
    this.nanoClock = nanoClock;
    this.metrics = new XdsMetrics(registry, streams::size);
  }

  public XdsMetrics metrics() {
    return metrics;
  }

  /** Node names with an open stream (a node may briefly have two while it reconnects). */
  public List<String> connectedNodes() {
    List<String> nodes = new ArrayList<>();
    streams.forEach(s -> nodes.add(s.node()));
    return nodes;
  }

  /** The reason in the last NACK from {@code node}, or null if it never rejected anything. */
  public @Nullable String lastNack(String node) {
    return lastNacks.get(node);
  }

  /**
   * Makes {@code next} the content every node should converge to and starts sending differences.
   * Call on the executor. Before the first push (the source has not synced yet) nodes may connect
   * but get nothing, so none ever sees a half-listed cluster.
   */
  public void push(NodeViews next) {
    views = next;
    for (NodeStream s : streams) {
      sync(s);
    }
  }

  private void sync(NodeStream s) {
    s.sync(views).forEach(metrics::pushed);
  }

  @Override
  public StreamObserver<DeltaDiscoveryRequest> deltaAggregatedResources(
      StreamObserver<DeltaDiscoveryResponse> responses) {
    ServerCallStreamObserver<DeltaDiscoveryResponse> call =
        (ServerCallStreamObserver<DeltaDiscoveryResponse>) responses;
    StreamHandler handler = new StreamHandler(call);
    call.setOnReadyHandler(() -> executor.execute(handler::onReady));
    call.setOnCancelHandler(() -> executor.execute(handler::ended));
    return new StreamObserver<>() {
      @Override
      public void onNext(DeltaDiscoveryRequest request) {
        executor.execute(() -> handler.onRequest(request));
      }

      @Override
      public void onError(Throwable t) {
        executor.execute(handler::ended);
      }

      @Override
      public void onCompleted() {
        executor.execute(
            () -> {
              handler.ended();
              call.onCompleted();
            });
      }
    };
  }

  /** Binds one gRPC call to its NodeStream once the node has said who it is. */
  private final class StreamHandler {
    private final ServerCallStreamObserver<DeltaDiscoveryResponse> call;
    private @Nullable NodeStream stream;
    private boolean ended;

    StreamHandler(ServerCallStreamObserver<DeltaDiscoveryResponse> call) {
      this.call = call;
    }

    void onReady() {
      NodeStream s = stream;
      if (s != null && !ended) {
        sync(s);
      }
    }

    void ended() {
      if (ended) {
        return;
      }
      ended = true;
      NodeStream s = stream;
      if (s != null && streams.remove(s)) {
        log.info("node {} disconnected; {} streams open", s.node(), streams.size());
      }
    }

    void onRequest(DeltaDiscoveryRequest request) {
      if (ended) {
        return;
      }
      NodeStream s = stream;
      if (s == null) {
        String node = nodeName(request.getNode());
        if (node.isEmpty()) {
          ended = true;
          call.onError(
              Status.INVALID_ARGUMENT
                  .withDescription("the first request must name the node (node.id)")
                  .asException());
          return;
        }
        NodeViews v = views;
        s = new NodeStream(call, node, v == null ? -1 : v.snapshot().revision());
        stream = s;
        streams.add(s);
        log.info("node {} connected; {} streams open", node, streams.size());
      }
      ResourceType type = ResourceType.ofTypeUrl(request.getTypeUrl());
      if (type == null) {
        log.warn("node {} asked for unknown type {}; ignored", s.node(), request.getTypeUrl());
        return;
      }
      String nonce = request.getResponseNonce();
      if (nonce.isEmpty()) {
        s.subscribe(type, request.getInitialResourceVersionsMap());
      } else {
        boolean nack = request.hasErrorDetail();
        NodeStream.Pending answered = s.answer(type, nonce, nack);
        if (answered != null && nack) {
          metrics.nacked(type);
          String reason = request.getErrorDetail().getMessage();
          lastNacks.put(s.node(), reason);
          log.warn("node {} rejected {} update {}: {}", s.node(), type, nonce, reason);
        } else if (answered != null && s.measures(answered)) {
          metrics.acked(nanoClock.getAsLong() - answered.changedAtNanos());
        }
      }
      sync(s);
    }
  }

  private static String nodeName(Node node) {
    if (!node.getId().isEmpty()) {
      return node.getId();
    }
    var field = node.getMetadata().getFieldsMap().get("NODE_NAME");
    return field == null ? "" : field.getStringValue();
  }
}
