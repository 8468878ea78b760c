package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.ReferenceGrant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/** Reads a Gateway API ReferenceGrant (which cross-namespace references are allowed). */
public final class ReferenceGrantParser extends YamlFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public ReferenceGrantParser(String file, List<String> errors) {
    super(file, errors);
  }

  /**
   * Gateway API {@code ReferenceGrant} ({@code gateway.networking.k8s.io/v1beta1}); null after
   * recording why it is invalid. Entries for kinds the mesh does not use (a Gateway, a Secret) are
   * valid and kept; they just never match a route's backendRef.
   */
  public @Nullable ReferenceGrant parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("ReferenceGrant", doc, docLabel);
    JsonNode spec = doc.path("spec");
    List<ReferenceGrant.From> from = new ArrayList<>();
    List<ReferenceGrant.To> to = new ArrayList<>();
    if (fields(spec, "spec", Set.of("from", "to"), false)) {
      JsonNode list = spec.path("from");
      if (!array(list, "spec.from") || list.isEmpty()) {
        error("spec.from", "at least one entry is required");
      } else {
        for (int i = 0; i < list.size(); i++) {
          String path = "spec.from[" + i + "]";
          JsonNode f = list.get(i);
          if (fields(f, path, Set.of("group", "kind", "namespace"), false)) {
            String group = text(f, "group", path + ".group");
            String kind = requiredText(f, "kind", path + ".kind");
            String ns = requiredText(f, "namespace", path + ".namespace");
            if (group == null) {
              error(path + ".group", "is required (\"\" for the core group)");
            } else if (kind != null && ns != null) {
              from.add(new ReferenceGrant.From(group, kind, ns));
            }
          }
        }
      }
      list = spec.path("to");
      if (!array(list, "spec.to") || list.isEmpty()) {
        error("spec.to", "at least one entry is required");
      } else {
        for (int i = 0; i < list.size(); i++) {
          String path = "spec.to[" + i + "]";
          JsonNode t = list.get(i);
          if (fields(t, path, Set.of("group", "kind", "name"), false)) {
            String group = text(t, "group", path + ".group");
            String kind = requiredText(t, "kind", path + ".kind");
            String name = text(t, "name", path + ".name");
            if (group == null) {
              error(path + ".group", "is required (\"\" for the core group)");
            } else if (name != null && name.isEmpty()) {
              error(path + ".name", "must not be empty (leave it out for every object)");
            } else if (kind != null) {
              to.add(new ReferenceGrant.To(group, kind, name));
            }
          }
        }
      }
    }
    if (id == null || errors.size() > before) {
      return null;
    }
    return new ReferenceGrant(id.namespace(), id.name(), from, to);
  }
}
