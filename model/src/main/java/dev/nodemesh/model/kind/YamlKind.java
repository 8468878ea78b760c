package dev.nodemesh.model.kind;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.NamespacedName;
import java.util.List;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * One Kubernetes kind the mesh reads, as YAML in a directory or as an object from the API server:
 * its kind and API group (which {@code apiVersion}s are ours, and which version and plural the
 * Kubernetes source watches), its parser, the {@link Slot} its records feed, and the resource name
 * a record travels under. Several YAML kinds may feed one wire kind (GRPCRoute travels as an {@code
 * HttpRoute}), and some feed no wire kind at all (ReferenceGrant, an {@link InputSlot}).
 *
 * @param <R> the record the parser makes
 */
public final class YamlKind<R> {
  /** Parses one object's JSON tree; null after recording in {@code errors} why it is invalid. */
  @FunctionalInterface
  public interface Parse<R> {
    @Nullable R parse(String file, List<String> errors, JsonNode doc, String label);
  }

  /**
   * Which {@code apiVersion}s of a YAML document are this kind (others of the name are ignored).
   */
  public enum ApiVersions {
    /** Any (the core kinds, Pod and Service, whose apiVersion is not checked). */
    ANY,
    /** Any version of the group. */
    GROUP,
    /** Exactly {@code group/version}. */
    EXACT
  }

  /** The API group of the mesh's security kinds (AuthorizationPolicy, PeerAuthentication). */
  public static final String SECURITY_GROUP = "security.nodemesh.dev";

  /** The API group of the mesh's traffic kinds (TrafficPolicy, HTTPFault). */
  public static final String TRAFFIC_GROUP = "traffic.nodemesh.dev";

  private final String kind;
  private final String group;
  private final String version;
  private final String plural;
  private final ApiVersions apiVersions;
  private final boolean required;
  private final Parse<R> parse;
  private final Slot<R> slot;
  private final Function<R, NamespacedName> id;
  private final Function<NamespacedName, String> resourceName;

  /**
   * @param group the API group, empty for the core group
   * @param version the version the Kubernetes source watches
   * @param plural the resource's plural, as the API server names it
   * @param required for a custom kind: true when the control plane must not start without its CRD
   *     (policy must never be silently ignored); false when a missing CRD is only logged
   * @param resourceName the name of a record's resource on the wire, from its namespace and name
   */
  YamlKind(
      String kind,
      String group,
      String version,
      String plural,
      ApiVersions apiVersions,
      boolean required,
      Parse<R> parse,
      Slot<R> slot,
      Function<R, NamespacedName> id,
      Function<NamespacedName, String> resourceName) {
    this.kind = kind;
    this.group = group;
    this.version = version;
    this.plural = plural;
    this.apiVersions = apiVersions;
    this.required = required;
    this.parse = parse;
    this.slot = slot;
    this.id = id;
    this.resourceName = resourceName;
  }

  /** The Kubernetes kind ("HTTPRoute"); also how problems and duplicates name the object. */
  public String kind() {
    return kind;
  }

  /** The API group; empty for the core group. */
  public String group() {
    return group;
  }

  public String version() {
    return version;
  }

  public String plural() {
    return plural;
  }

  /** A core kind (Pod, Service), which the Kubernetes source watches with a typed informer. */
  public boolean core() {
    return group.isEmpty();
  }

  public boolean required() {
    return required;
  }

  /** Whether a document of this kind with {@code apiVersion} is ours. */
  public boolean accepts(String apiVersion) {
    return switch (apiVersions) {
      case ANY -> true;
      case GROUP -> apiVersion.startsWith(group + "/");
      case EXACT -> apiVersion.equals(group + "/" + version);
    };
  }

  public @Nullable R parse(String file, List<String> errors, JsonNode doc, String label) {
    return parse.parse(file, errors, doc, label);
  }

  public Slot<R> slot() {
    return slot;
  }

  /** The record's namespace and name, for duplicates and messages. */
  public NamespacedName id(R record) {
    return id.apply(record);
  }

  /** The name the object's resource travels under ({@code <ns>/<name>}, or with a prefix). */
  public String resourceName(NamespacedName id) {
    return resourceName.apply(id);
  }

  /** The resource name of every namespaced kind but GRPCRoute: {@code <namespace>/<name>}. */
  public static String plainName(String namespace, String name) {
    return namespace + "/" + name;
  }

  /** {@link #plainName(String, String)} of an object's identity. */
  public static String plainName(NamespacedName id) {
    return plainName(id.namespace(), id.name());
  }

  @Override
  public String toString() {
    return kind;
  }
}
