package dev.nodemesh.cni.install;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.cni.spec.CniVersion;
import java.util.ArrayList;
import java.util.List;

/**
 * The edits install-cni makes to a network config, as pure functions over parsed JSON. Anything it
 * does not fully understand is refused with a message ({@link Refused}) rather than rewritten: a
 * broken conflist stops every pod on the node.
 */
public final class ConfListEdit {
  /** The plugin type nodemesh is installed as (the binary's name in the CNI bin dir). */
  public static final String TYPE = "nodemesh";

  private ConfListEdit() {}

  /** The config after an edit, and whether it differs from the input. */
  public record Outcome(ObjectNode conflist, boolean changed) {}

  /** A config install-cni will not touch, with the reason. */
  public static final class Refused extends Exception {
    private static final long serialVersionUID = 1L;

    public Refused(String message) {
      super(message);
    }
  }

  /**
   * Appends {@code plugin} (a nodemesh entry, without name/cniVersion) as the last plugin. A
   * single-plugin {@code .conf} becomes a conflist. Idempotent: when the last plugin already equals
   * {@code plugin}, nothing changes; stale nodemesh entries elsewhere are removed.
   */
  public static Outcome insert(JsonNode conf, ObjectNode plugin) throws Refused {
    ObjectNode list = asConflist(conf);
    ArrayNode plugins = (ArrayNode) list.get("plugins");
    int last = plugins.size() - 1;
    if (last >= 0 && plugins.get(last).equals(plugin) && count(plugins) == 1) {
      return new Outcome(list, !list.equals(conf));
    }
    ObjectNode out = list.deepCopy();
    ArrayNode p = (ArrayNode) out.get("plugins");
    removeNodemesh(p);
    if (p.isEmpty()) {
      throw new Refused("the config has no plugin but nodemesh: nothing to chain after");
    }
    p.add(plugin.deepCopy());
    return new Outcome(out, true);
  }

  /** Removes every nodemesh entry; a conflist without one is unchanged. */
  public static Outcome remove(JsonNode conf) throws Refused {
    ObjectNode list = asConflist(conf);
    if (count((ArrayNode) list.get("plugins")) == 0) {
      return new Outcome(list, !list.equals(conf));
    }
    ObjectNode out = list.deepCopy();
    removeNodemesh((ArrayNode) out.get("plugins"));
    return new Outcome(out, true);
  }

  /** True if the config chains nodemesh anywhere. */
  public static boolean contains(JsonNode conf) {
    JsonNode plugins = conf.path("plugins");
    return plugins.isArray()
        ? count((ArrayNode) plugins) > 0
        : TYPE.equals(conf.path("type").asText());
  }

  /**
   * The config as a conflist, checked: an object with a supported {@code cniVersion}, a {@code
   * name}, and {@code plugins} each an object with a {@code type}; or a single-plugin config with a
   * {@code type}, turned into a one-plugin conflist as libcni's ConfListFromConf does (its {@code
   * name}/{@code cniVersion} move up to the list).
   */
  static ObjectNode asConflist(JsonNode conf) throws Refused {
    if (!conf.isObject()) {
      throw new Refused("not a JSON object");
    }
    String version = conf.path("cniVersion").asText("");
    try {
      CniVersion.parse(version);
    } catch (CniError e) {
      throw new Refused(
          "cniVersion \"" + version + "\" is not one nodemesh supports " + CniVersion.supported());
    }
    if (!conf.path("name").isTextual() || conf.path("name").asText().isEmpty()) {
      throw new Refused("no \"name\"");
    }
    JsonNode plugins = conf.get("plugins");
    if (plugins == null) {
      if (!conf.path("type").isTextual() || conf.path("type").asText().isEmpty()) {
        throw new Refused("neither \"plugins\" nor a plugin \"type\"");
      }
      ObjectNode single = ((ObjectNode) conf).deepCopy();
      single.remove(List.of("name", "cniVersion"));
      ObjectNode list = JsonNodeFactory.instance.objectNode();
      list.put("cniVersion", version);
      list.set("name", conf.get("name"));
      list.putArray("plugins").add(single);
      return list;
    }
    if (!plugins.isArray() || plugins.isEmpty()) {
      throw new Refused("\"plugins\" is not a non-empty list");
    }
    for (int i = 0; i < plugins.size(); i++) {
      JsonNode p = plugins.get(i);
      if (!p.isObject() || !p.path("type").isTextual() || p.path("type").asText().isEmpty()) {
        throw new Refused("plugins[" + i + "] has no \"type\"");
      }
    }
    return (ObjectNode) conf;
  }

  private static int count(ArrayNode plugins) {
    int n = 0;
    for (JsonNode p : plugins) {
      if (TYPE.equals(p.path("type").asText())) {
        n++;
      }
    }
    return n;
  }

  private static void removeNodemesh(ArrayNode plugins) {
    List<Integer> drop = new ArrayList<>();
    for (int i = 0; i < plugins.size(); i++) {
      if (TYPE.equals(plugins.get(i).path("type").asText())) {
        drop.add(i);
      }
    }
    for (int i = drop.size() - 1; i >= 0; i--) {
      plugins.remove(drop.get(i).intValue());
    }
  }
}
