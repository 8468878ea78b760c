package dev.nodemesh.model.kind;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import com.google.protobuf.Any;
import com.google.protobuf.Message;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Walks the registry: every Kubernetes kind round-trips YAML → record → proto → record through its
 * descriptors, every wire kind has a type URL, decoder, encoder and snapshot slot, and every
 * constant is listed. A new kind that forgets one of these, or has no sample here, fails.
 */
class ResourceKindsTest {
  /** One valid object per Kubernetes kind, consistent with each other (one directory). */
  private static final Map<String, String> SAMPLES =
      Map.of(
          "Pod",
          """
          apiVersion: v1
          kind: Pod
          metadata: {name: web-1, namespace: shop, labels: {app: web}}
          spec: {nodeName: node-1, containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}
          status: {podIP: 10.0.0.5, podIPs: [{ip: 10.0.0.5}]}
          """,
          "Service",
          """
          apiVersion: v1
          kind: Service
          metadata: {name: web, namespace: shop}
          spec: {clusterIPs: [10.96.0.10], selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
          """,
          "AuthorizationPolicy",
          """
          apiVersion: security.nodemesh.dev/v1alpha1
          kind: AuthorizationPolicy
          metadata: {name: allow, namespace: shop}
          spec:
            selector: {matchLabels: {app: web}}
            rules: [{from: [{namespaces: [shop]}], to: [{ports: [8080], methods: [GET]}]}]
          """,
          "PeerAuthentication",
          """
          apiVersion: security.nodemesh.dev/v1alpha1
          kind: PeerAuthentication
          metadata: {name: strict, namespace: shop}
          spec: {mtls: {mode: STRICT}}
          """,
          "HTTPRoute",
          """
          apiVersion: gateway.networking.k8s.io/v1
          kind: HTTPRoute
          metadata: {name: web, namespace: shop}
          spec:
            parentRefs: [{group: "", kind: Service, name: web, port: 80}]
            rules:
              - matches: [{path: {type: PathPrefix, value: /api}}]
                filters:
                  - type: ExtensionRef
                    extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: slow}
                backendRefs: [{name: web, port: 80, weight: 3}, {name: db, namespace: data, port: 80}]
          """,
          "GRPCRoute",
          """
          apiVersion: gateway.networking.k8s.io/v1
          kind: GRPCRoute
          metadata: {name: web, namespace: shop}
          spec:
            parentRefs: [{group: "", kind: Service, name: web, port: 80}]
            rules: [{matches: [{method: {service: pkg.Echo, method: Say}}], backendRefs: [{name: web, port: 80}]}]
          """,
          "TrafficPolicy",
          """
          apiVersion: traffic.nodemesh.dev/v1alpha1
          kind: TrafficPolicy
          metadata: {name: web, namespace: shop}
          spec:
            targetRef: {group: "", kind: Service, name: web}
            loadBalancer: {algorithm: LEAST_REQUEST}
          """,
          "HTTPFault",
          """
          apiVersion: traffic.nodemesh.dev/v1alpha1
          kind: HTTPFault
          metadata: {name: slow, namespace: shop}
          spec: {delay: {fixedDelay: 150ms, percentage: 50}}
          """,
          "ReferenceGrant",
          """
          apiVersion: gateway.networking.k8s.io/v1beta1
          kind: ReferenceGrant
          metadata: {name: from-shop, namespace: data}
          spec:
            from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
            to: [{group: "", kind: Service, name: db}]
          """);

  @Test
  void everyKubernetesKindRoundTripsYamlRecordProtoRecord() throws Exception {
    assertEquals(
        new TreeMap<>(SAMPLES).keySet(),
        new TreeMap<>(kindNames()).keySet(),
        "each YAML kind needs a sample here, and each sample a kind");
    for (YamlKind<?> kind : ResourceKinds.Yaml.ALL) {
      roundTrip(kind);
    }
  }

  private static Map<String, YamlKind<?>> kindNames() {
    Map<String, YamlKind<?>> names = new TreeMap<>();
    ResourceKinds.Yaml.ALL.forEach(k -> assertNull(names.put(k.kind(), k), k + " listed twice"));
    return names;
  }

  private static <R> void roundTrip(YamlKind<R> kind) throws Exception {
    JsonNode doc = new YAMLMapper().readTree(SAMPLES.get(kind.kind()));
    assertTrue(kind.accepts(doc.path("apiVersion").asText()), kind + ": its own apiVersion");
    assertSame(kind, ResourceKinds.Yaml.named(kind.kind()));
    List<String> errors = new ArrayList<>();
    R record = kind.parse("sample.yaml", errors, doc, "document 1");
    assertNotNull(record, kind + ": " + errors);
    assertEquals(List.of(), errors);
    assertEquals(
        doc.path("metadata").path("namespace").asText() + "/" + doc.at("/metadata/name").asText(),
        kind.id(record).toString());
    assertTrue(ResourceKinds.SLOTS.contains(kind.slot()), kind + " feeds a listed slot");
    if (kind.slot() instanceof ResourceKind<?, R> wire) {
      wireRoundTrip(kind, wire, record);
    } else {
      assertTrue(
          ResourceKinds.ALL.stream().anyMatch(k -> k.inputs().contains(kind.slot())),
          kind.slot() + ": an input-only slot that no wire kind reads");
    }
  }

  private static <P extends Message, R> void wireRoundTrip(
      YamlKind<R> yaml, ResourceKind<P, R> wire, R parsed) {
    R record = wire.resolve(parsed, Inputs.NONE);
    P proto = wire.encode(record);
    assertTrue(wire.protoType().isInstance(proto), wire + ": encodes its own proto type");
    assertEquals(wire.typeUrl(), Any.pack(proto).getTypeUrl(), wire + ": type URL");
    List<String> errors = new ArrayList<>();
    R decoded = wire.decode(new ResourceDecoder(errors), yaml.resourceName(yaml.id(record)), proto);
    assertEquals(List.of(), errors, yaml + ": the decoder refuses what the encoder made");
    assertEquals(record, decoded, yaml + ": YAML → record → proto → record");
    // The slot: written by ResourceKinds.snapshot, read back by the kind.
    ConfigSnapshot alone =
        ResourceKinds.snapshot(
            1,
            new ResourceKinds.Values() {
              @Override
              @SuppressWarnings("unchecked") // only `wire` gets values, and they are R
              public <T> List<T> of(ResourceKind<?, T> kind) {
                return kind == wire ? List.of((T) decoded) : List.of();
              }
            });
    assertEquals(List.of(decoded), wire.in(alone), wire + ": its slot in the snapshot");
  }

  @Test
  void theLoaderPutsEveryKindInItsSlot(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("all.yaml"), String.join("---\n", SAMPLES.values()));
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    for (ResourceKind<?, ?> kind : ResourceKinds.ALL) {
      assertEquals(
          ResourceKinds.Yaml.feeding(kind).size(),
          kind.in(snapshot).size(),
          kind + ": one sample per YAML kind feeding it");
    }
    // The ReferenceGrant permitted the route's cross-namespace backend (the resolve step).
    assertTrue(
        snapshot.httpRoutes().stream()
            .flatMap(r -> r.rules().stream())
            .flatMap(r -> r.backends().stream())
            .allMatch(b -> b.permitted()));
  }

  @Test
  void everyWireKindIsFedAndEveryKindFileIsListed() throws Exception {
    for (ResourceKind<?, ?> kind : ResourceKinds.ALL) {
      assertFalse(ResourceKinds.Yaml.feeding(kind).isEmpty(), kind + ": no YAML kind feeds it");
    }
    // Every descriptor any class of the package declares (the kind files, and the registry's own
    // aliases) is registered: a kind file left out of Yaml.ALL would be read by nothing.
    List<Class<?>> holders = new ArrayList<>(kindPackageClasses());
    holders.add(ResourceKinds.Yaml.class);
    Set<Object> declaredWire = new HashSet<>();
    Set<Object> declaredYaml = new HashSet<>();
    for (Class<?> holder : holders) {
      declaredWire.addAll(constants(holder, ResourceKind.class));
      declaredYaml.addAll(constants(holder, YamlKind.class));
      for (Object slot : constants(holder, InputSlot.class)) {
        assertTrue(ResourceKinds.SLOTS.contains(slot), holder.getSimpleName() + ": " + slot);
      }
    }
    assertEquals(Set.copyOf(ResourceKinds.ALL), declaredWire);
    assertEquals(Set.copyOf(ResourceKinds.Yaml.ALL), declaredYaml);
    assertTrue(
        holders.stream().anyMatch(c -> c == TrafficPolicyKind.class),
        "the package's classes were found: " + holders);
    Set<Class<?>> recordTypes = new HashSet<>();
    for (ResourceKind<?, ?> k : ResourceKinds.ALL) {
      assertTrue(recordTypes.add(k.recordType()), k + " shares its record type (its slot)");
    }
  }

  private static Set<Object> constants(Class<?> holder, Class<?> type) throws Exception {
    Set<Object> out = new HashSet<>();
    for (Field f : holder.getFields()) {
      if (Modifier.isStatic(f.getModifiers()) && type.isAssignableFrom(f.getType())) {
        out.add(f.get(null));
      }
    }
    return out;
  }

  /** The top-level classes of the kind package, from the directory or jar it was loaded from. */
  private static List<Class<?>> kindPackageClasses() throws Exception {
    Path root =
        Path.of(ResourceKinds.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Path dir = root.resolve(ResourceKinds.class.getPackageName().replace('.', '/'));
    List<Class<?>> out = new ArrayList<>();
    try (var files = Files.list(dir)) {
      for (Path f : files.sorted().toList()) {
        String n = f.getFileName().toString();
        if (n.endsWith(".class") && !n.contains("$") && !n.startsWith("package-info")) {
          out.add(
              Class.forName(
                  ResourceKinds.class.getPackageName() + "." + n.substring(0, n.length() - 6)));
        }
      }
    }
    return out;
  }

  @Test
  void typeUrlsAreTheProtoNamesAndUnique() {
    assertEquals(
        "type.googleapis.com/nodemesh.config.v1.Workload", ResourceKinds.WORKLOAD.typeUrl());
    Set<String> seen = new HashSet<>();
    for (ResourceKind<?, ?> k : ResourceKinds.ALL) {
      assertTrue(seen.add(k.typeUrl()), k + " repeats a type URL");
      assertSame(k, ResourceKinds.ofTypeUrl(k.typeUrl()));
      assertEquals(k.protoType().getSimpleName(), k.name());
    }
    assertNull(ResourceKinds.ofTypeUrl("type.googleapis.com/nodemesh.config.v1.Nothing"));
  }

  @Test
  void aWorkloadThatIsNotReadyServesOnlyItsOwnNode() {
    Workload ready = Workload.newBuilder().setReady(true).setNode("n1").build();
    Workload starting = Workload.newBuilder().setReady(false).setNode("n1").build();
    assertTrue(ResourceKinds.WORKLOAD.servesNode(ready, "n2"));
    assertTrue(ResourceKinds.WORKLOAD.servesNode(starting, "n1"));
    assertFalse(ResourceKinds.WORKLOAD.servesNode(starting, "n2"));
  }
}
