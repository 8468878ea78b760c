package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** Reads a Gateway API HTTPRoute (GAMMA: parents are Services) into an {@link HttpRoute}. */
public final class HttpRouteParser extends RouteFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public HttpRouteParser(String file, List<String> errors) {
    super(file, errors);
  }

  /**
   * Returns the route, or null after recording why the HTTPRoute is invalid. A route none of whose
   * parentRefs is a Service (a route for a Gateway) is not ours: null without an error.
   */
  public @Nullable HttpRoute parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("HTTPRoute", doc, docLabel);
    JsonNode meta = doc.path("metadata");
    Map<String, String> annotations = stringMap(meta.path("annotations"), "metadata.annotations");
    String namespace = id == null ? "default" : id.namespace();
    JsonNode spec = doc.path("spec");
    List<HttpRoute.Parent> parents = parents(spec, namespace);
    List<HttpRoute.Rule> rules = new ArrayList<>();
    JsonNode ruleList = spec.path("rules");
    if (ruleList.isMissingNode() || ruleList.isNull()) {
      rules.add(
          new HttpRoute.Rule(
              List.of(HttpRoute.Match.everything()),
              List.of(),
              HttpRoute.HeaderModifier.NONE,
              HttpRoute.HeaderModifier.NONE,
              null,
              null,
              null,
              null));
    } else if (array(ruleList, "spec.rules")) {
      for (int i = 0; i < ruleList.size(); i++) {
        HttpRoute.Rule r = rule(ruleList.get(i), "spec.rules[" + i + "]", namespace);
        if (r != null) {
          rules.add(r);
        }
      }
    }
    long created = created(meta);
    if (id == null || errors.size() > before || parents.isEmpty()) {
      return null;
    }
    return new HttpRoute(
        id.name(),
        id.namespace(),
        parents,
        rules,
        "true".equals(annotations.get(RETRY_NON_IDEMPOTENT)),
        created);
  }
}
