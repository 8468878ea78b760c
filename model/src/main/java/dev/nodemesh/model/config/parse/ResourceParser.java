package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.Workload;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * One entry point over the per-kind YAML parsers in {@code model.config.parse}: turns one parsed
 * YAML document into a record, recording problems as {@code <file>: <Kind> <ns>/<name>: <field
 * path>: <problem>}. Each kind's rules live in its own parser class; the shared field readers live
 * in {@code parse.YamlFields}. This class only chooses the parser, for callers that want one named
 * method per kind (route status). The loader and the sources dispatch through the registry ({@code
 * model.kind.ResourceKinds.Yaml}) instead, so a new kind needs no method here.
 */
public final class ResourceParser {
  /** The API version of the mesh's own security kinds (AuthorizationPolicy, PeerAuthentication). */
  public static final String SECURITY_API_VERSION = AuthorizationPolicyParser.SECURITY_API_VERSION;

  /** The API group of the mesh's traffic kinds (HTTPFault). */
  public static final String TRAFFIC_GROUP = HttpRouteParser.TRAFFIC_GROUP;

  /** The annotation that lets a route retry non-idempotent methods (a nodemesh extension). */
  public static final String RETRY_NON_IDEMPOTENT = HttpRouteParser.RETRY_NON_IDEMPOTENT;

  private final List<String> errors;
  private final String file;

  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public ResourceParser(String file, List<String> errors) {
    this.file = file;
    this.errors = errors;
  }

  /** Returns the workload, or null after recording why the Pod is invalid. */
  public @Nullable Workload pod(JsonNode doc, String docLabel) {
    return new WorkloadParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the service, or null after recording why the Service is invalid. */
  public @Nullable MeshService service(JsonNode doc, String docLabel) {
    return new ServiceParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the policy, or null after recording why it is invalid. */
  public @Nullable AuthorizationPolicy authorizationPolicy(JsonNode doc, String docLabel) {
    return new AuthorizationPolicyParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the peer authentication, or null after recording why it is invalid. */
  public @Nullable PeerAuthentication peerAuthentication(JsonNode doc, String docLabel) {
    return new PeerAuthenticationParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the HTTPRoute, or null after recording why it is invalid. */
  public @Nullable HttpRoute httpRoute(JsonNode doc, String docLabel) {
    return new HttpRouteParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the GRPCRoute (as an HTTP route), or null after recording why it is invalid. */
  public @Nullable HttpRoute grpcRoute(JsonNode doc, String docLabel) {
    return new GrpcRouteParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the ReferenceGrant, or null after recording why it is invalid. */
  public @Nullable ReferenceGrant referenceGrant(JsonNode doc, String docLabel) {
    return new ReferenceGrantParser(file, errors).parse(doc, docLabel);
  }

  /** Returns the HTTPFault, or null after recording why it is invalid. */
  public @Nullable HttpFault httpFault(JsonNode doc, String docLabel) {
    return new HttpFaultParser(file, errors).parse(doc, docLabel);
  }
}
