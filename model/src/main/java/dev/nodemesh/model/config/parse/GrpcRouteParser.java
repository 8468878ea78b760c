package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.GrpcMatch;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TextMatch;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Reads a Gateway API GRPCRoute into an {@link HttpRoute} whose matches are gRPC service/method
 * paths; filters and backends follow the HTTPRoute rules.
 */
public final class GrpcRouteParser extends RouteFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public GrpcRouteParser(String file, List<String> errors) {
    super(file, errors);
  }

  /**
   * Returns a Gateway API {@code GRPCRoute} attached to Services as an {@link HttpRoute} with
   * {@code grpc} set (its method matches become path matches, see {@link GrpcMatch}), or null after
   * recording why it is invalid. A route with no Service parent is not ours: null, no error.
   * Filters: request/response header modifiers, RequestMirror, ExtensionRef to an HTTPFault.
   */
  public @Nullable HttpRoute parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("GRPCRoute", doc, docLabel);
    JsonNode meta = doc.path("metadata");
    String namespace = id == null ? "default" : id.namespace();
    JsonNode spec = doc.path("spec");
    List<HttpRoute.Parent> parents = parents(spec, namespace);
    List<HttpRoute.Rule> rules = new ArrayList<>();
    JsonNode ruleList = spec.path("rules");
    if (ruleList.isMissingNode() || ruleList.isNull()) {
      error("spec.rules", "at least one rule is required");
    } else if (array(ruleList, "spec.rules")) {
      for (int i = 0; i < ruleList.size(); i++) {
        HttpRoute.Rule r = grpcRule(ruleList.get(i), "spec.rules[" + i + "]", namespace);
        if (r != null) {
          rules.add(r);
        }
      }
    }
    long created = created(meta);
    if (id == null || errors.size() > before || parents.isEmpty()) {
      return null;
    }
    return new HttpRoute(id.name(), id.namespace(), parents, rules, false, created, true);
  }

  private HttpRoute.@Nullable Rule grpcRule(JsonNode rule, String path, String namespace) {
    int before = errors.size();
    List<HttpRoute.Match> matches = new ArrayList<>();
    JsonNode list = rule.path("matches");
    if (array(list, path + ".matches")) {
      for (int i = 0; i < list.size(); i++) {
        String mpath = path + ".matches[" + i + "]";
        JsonNode m = list.get(i);
        TextMatch p = TextMatch.pathPrefix("/");
        JsonNode method = m.path("method");
        if (!method.isMissingNode() && !method.isNull()) {
          String type = text(method, "type", mpath + ".method.type");
          String service = text(method, "service", mpath + ".method.service");
          String name = text(method, "method", mpath + ".method.method");
          boolean regex = "RegularExpression".equals(type);
          if (type != null && !regex && !type.equals("Exact")) {
            error(mpath + ".method.type", quote(type) + " is not Exact or RegularExpression");
          } else if ((service == null || service.isEmpty()) && (name == null || name.isEmpty())) {
            error(mpath + ".method", "service or method is required");
          } else if (!regex
              && ((service != null && !GRPC_SERVICE.matcher(service).matches())
                  || (name != null && !GRPC_METHOD.matcher(name).matches()))) {
            error(
                mpath + ".method",
                "an Exact service is letters, digits, '_' and '.', a method has no '.' or '/'");
          } else {
            try {
              p = GrpcMatch.path(regex, service, name);
            } catch (java.util.regex.PatternSyntaxException e) {
              error(mpath + ".method", "not a valid regular expression: " + e.getDescription());
            }
          }
        }
        List<TextMatch> headers = nameValueMatches(m.path("headers"), mpath + ".headers", true);
        matches.add(new HttpRoute.Match(p, headers, List.of(), null));
      }
    }
    if (matches.isEmpty()) {
      matches.add(HttpRoute.Match.everything());
    }
    List<HttpRoute.Backend> backends = backends(rule, path, namespace);
    Filters fl = filters(rule.path("filters"), path + ".filters", namespace, matches, true);
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Rule(
        matches, backends, fl.request, fl.response, null, null, null, null, fl.fault, fl.mirror);
  }

  private static final Pattern GRPC_SERVICE =
      Pattern.compile("[A-Za-z_][A-Za-z_0-9]*(\\.[A-Za-z_][A-Za-z_0-9]*)*");

  private static final Pattern GRPC_METHOD = Pattern.compile("[A-Za-z_][A-Za-z_0-9]*");
}
