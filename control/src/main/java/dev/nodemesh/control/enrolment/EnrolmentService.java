package dev.nodemesh.control.enrolment;

import dev.nodemesh.api.enrolment.v1.EnrolmentServiceGrpc;
import dev.nodemesh.api.enrolment.v1.ReportEnrolledRequest;
import dev.nodemesh.api.enrolment.v1.ReportEnrolledResponse;
import dev.nodemesh.control.ca.AuthenticationException;
import dev.nodemesh.control.ca.CertificateService;
import dev.nodemesh.control.ca.NodeAuthenticator;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.HashSet;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code nodemesh.enrolment.v1.EnrolmentService}: a node proxy reports the pods it has enrolled,
 * and {@link EnrolmentRegistry} records them for the node. With an authenticator (the control plane
 * runs a CA) the call must carry the node's token, as the CA and the xDS stream take it, and the
 * report must name the node the token proves; without one (local mode with no CA, where the xDS
 * stream is not authenticated either) the node named is taken as it is.
 *
 * <p>Whatever a report holds, it is recorded under the reporting node only, and sources look a
 * workload up under its own node, so no node can mark another node's pod enrolled.
 *
 * <p>Runs on gRPC's application executor (the authenticator may block on a TokenReview).
 */
public final class EnrolmentService extends EnrolmentServiceGrpc.EnrolmentServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(EnrolmentService.class);
  private static final Context.Key<String> TOKEN = Context.key("nodemesh-enrolment-token");

  private final EnrolmentRegistry registry;
  private final @Nullable NodeAuthenticator authenticator;

  /**
   * @param authenticator proves the calling node by its token; null takes the node the report names
   */
  public EnrolmentService(EnrolmentRegistry registry, @Nullable NodeAuthenticator authenticator) {
    this.registry = registry;
    this.authenticator = authenticator;
  }

  /** The service with the interceptor that lifts the bearer token out of the metadata. */
  public ServerServiceDefinition definition() {
    return ServerInterceptors.intercept(
        this,
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            String token = CertificateService.bearerToken(headers);
            return Contexts.interceptCall(
                Context.current().withValue(TOKEN, token), call, headers, next);
          }
        });
  }

  @Override
  public void reportEnrolled(
      ReportEnrolledRequest request, StreamObserver<ReportEnrolledResponse> response) {
    String named = request.getNode();
    if (named.isEmpty()) {
      refuse(response, Status.INVALID_ARGUMENT, "?", "the report must name its node");
      return;
    }
    NodeAuthenticator auth = authenticator;
    if (auth != null) {
      String token = TOKEN.get();
      if (token == null || token.isEmpty()) {
        refuse(response, Status.UNAUTHENTICATED, named, "no bearer token");
        return;
      }
      String proven;
      try {
        proven = auth.nodeOf(token);
      } catch (AuthenticationException e) {
        refuse(response, Status.UNAUTHENTICATED, named, String.valueOf(e.getMessage()));
        return;
      } catch (RuntimeException e) {
        log.warn("enrolment: authenticating node {} failed: {}", named, e.toString());
        response.onError(
            Status.UNAVAILABLE.withDescription("cannot authenticate now").asException());
        return;
      }
      if (!proven.equals(named)) {
        refuse(
            response,
            Status.PERMISSION_DENIED,
            named,
            "the token is node " + proven + "'s, the report names " + named);
        return;
      }
    }
    Set<String> uids = new HashSet<>();
    for (String uid : request.getPodUidsList()) {
      if (uid.isEmpty()) {
        refuse(response, Status.INVALID_ARGUMENT, named, "an empty pod uid");
        return;
      }
      uids.add(uid);
    }
    boolean changed = registry.report(named, uids);
    if (changed) {
      log.info("node {} reports {} pods enrolled", named, uids.size());
    }
    response.onNext(ReportEnrolledResponse.newBuilder().setChanged(changed).build());
    response.onCompleted();
  }

  private static void refuse(
      StreamObserver<ReportEnrolledResponse> response, Status status, String node, String why) {
    log.warn("enrolment: refused a report naming node {}: {}", node, why);
    // The caller learns the category only: the detail may name other nodes.
    response.onError(status.withDescription("enrolment report refused").asException());
  }
}
