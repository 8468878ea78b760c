package dev.nodemesh.control.xds;

import dev.nodemesh.control.ca.AuthenticationException;
import dev.nodemesh.control.ca.CertificateService;
import dev.nodemesh.control.ca.NodeAuthenticator;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.translate.NodeViews;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
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
 * <p>Node credential: served through {@link #definition(NodeAuthenticator)} with an authenticator
 * (the control plane runs a CA), every stream must carry the node's token as {@code authorization:
 * Bearer <token>} (the bootstrap token locally, the proxy pod's service-account token on a
 * cluster), the same credential the CA takes. The token is checked once, when the stream opens (the
 * authenticator may block on the API server, so this runs on gRPC's application executor, never on
 * {@code executor}); the node it proves must be the node the first request names. A stream without
 * a token or with a bad one ends with UNAUTHENTICATED, one naming another node with
 * PERMISSION_DENIED, and each refusal is logged and counted ({@link StreamRefusal}). Without an
 * authenticator (local mode with no CA) streams are taken as before.
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

  /** This service, with no node credential required (a control plane without a CA). */
  public ServerServiceDefinition definition() {
    return bindService();
  }

  /** This service, requiring every stream to prove its node with {@code authenticator}. */
  public ServerServiceDefinition definition(NodeAuthenticator authenticator) {
    return ServerInterceptors.intercept(this, new NodeCredential(authenticator));
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
    StreamHandler handler = new StreamHandler(call, AUTHENTICATED_NODE.get());
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
    private final @Nullable String authenticatedNode;
    private @Nullable NodeStream stream;
    private boolean ended;

    StreamHandler(
        ServerCallStreamObserver<DeltaDiscoveryResponse> call, @Nullable String authenticatedNode) {
      this.call = call;
      this.authenticatedNode = authenticatedNode;
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
        String proven = authenticatedNode;
        if (proven != null && !proven.equals(node)) {
          ended = true;
          metrics.refused(StreamRefusal.NODE_MISMATCH);
          log.warn(
              "xDS: refused a stream of node {} that asked as node {}: {}",
              proven,
              node,
              StreamRefusal.NODE_MISMATCH.label());
          call.onError(
              Status.PERMISSION_DENIED
                  .withDescription("the node credential is not for node " + node)
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

  /** The node the stream's credential proved, set by {@link NodeCredential}; null without one. */
  private static final Context.Key<String> AUTHENTICATED_NODE =
      Context.key("nodemesh-authenticated-node");

  /**
   * Authenticates the stream's bearer token when the call starts, on gRPC's application executor (a
   * TokenReview blocks), and hands the proven node to the handler through the call's context.
   */
  private final class NodeCredential implements ServerInterceptor {
    private final NodeAuthenticator authenticator;

    NodeCredential(NodeAuthenticator authenticator) {
      this.authenticator = authenticator;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      String token = CertificateService.bearerToken(headers);
      String node;
      if (token.isEmpty()) {
        return refuse(call, StreamRefusal.UNAUTHENTICATED, "no bearer token");
      }
      try {
        node = authenticator.nodeOf(token);
      } catch (AuthenticationException e) {
        return refuse(call, StreamRefusal.UNAUTHENTICATED, e.getMessage());
      } catch (RuntimeException e) {
        return refuse(call, StreamRefusal.AUTHENTICATOR_UNAVAILABLE, e.toString());
      }
      return Contexts.interceptCall(
          Context.current().withValue(AUTHENTICATED_NODE, node), call, headers, next);
    }

    private <Q, R> ServerCall.Listener<Q> refuse(
        ServerCall<Q, R> call, StreamRefusal reason, @Nullable String detail) {
      metrics.refused(reason);
      log.warn("xDS: refused a stream from {}: {} ({})", remote(call), reason.label(), detail);
      // The caller learns the category only; the detail can name other nodes and pods.
      call.close(
          Status.fromCode(reason.code()).withDescription(reason.label().replace('_', ' ')),
          new Metadata());
      return new ServerCall.Listener<>() {};
    }
  }

  private static Object remote(ServerCall<?, ?> call) {
    Object a = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
    return a == null ? "?" : a;
  }

  private static String nodeName(Node node) {
    if (!node.getId().isEmpty()) {
      return node.getId();
    }
    var field = node.getMetadata().getFieldsMap().get("NODE_NAME");
    return field == null ? "" : field.getStringValue();
  }
}
