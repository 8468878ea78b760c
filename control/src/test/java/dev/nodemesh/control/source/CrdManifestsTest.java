package dev.nodemesh.control.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.nodemesh.api.config.v1.AuthorizationPolicy;
import dev.nodemesh.api.config.v1.PeerAuthentication;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The CRDs in {@code deploy/crds} name the group, version, kinds and plurals the Kubernetes source
 * watches, and their enums and fields are the ones the parser reads, so a cluster accepts exactly
 * the objects local YAML does (the parser's finer checks aside).
 */
class CrdManifestsTest {
  private static final Path CRDS = Path.of("..", "deploy", "crds");

  private static JsonNode crd(String file) throws Exception {
    return new YAMLMapper().readTree(Files.readString(CRDS.resolve(file)));
  }

  private static List<String> texts(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  @Test
  void authorizationPolicyCrdMatchesTheSourceAndTheParser() throws Exception {
    JsonNode crd = crd("authorizationpolicies.security.nodemesh.dev.yaml");
    assertEquals("CustomResourceDefinition", crd.path("kind").asText());
    assertEquals("security.nodemesh.dev", crd.at("/spec/group").asText());
    assertEquals("Namespaced", crd.at("/spec/scope").asText());
    assertEquals("AuthorizationPolicy", crd.at("/spec/names/kind").asText());
    assertEquals("authorizationpolicies", crd.at("/spec/names/plural").asText());
    JsonNode version = crd.at("/spec/versions/0");
    assertEquals("v1alpha1", version.path("name").asText());
    JsonNode spec = version.at("/schema/openAPIV3Schema/properties/spec/properties");
    List<String> actions = new ArrayList<>();
    for (AuthorizationPolicy.Action a : AuthorizationPolicy.Action.values()) {
      if (a != AuthorizationPolicy.Action.ACTION_UNSPECIFIED
          && a != AuthorizationPolicy.Action.UNRECOGNIZED) {
        actions.add(a.name());
      }
    }
    assertEquals(actions, texts(spec.at("/action/enum")));
    JsonNode from = spec.at("/rules/items/properties/from/items/properties");
    List<String> fields = new ArrayList<>();
    from.fieldNames().forEachRemaining(fields::add);
    assertEquals(
        List.of(
            "principals",
            "notPrincipals",
            "namespaces",
            "notNamespaces",
            "ipBlocks",
            "notIpBlocks"),
        fields);
    String pattern = from.at("/principals/items/pattern").asText();
    for (String f : List.of("notPrincipals", "namespaces", "notNamespaces")) {
      assertEquals(pattern, from.at("/" + f + "/items/pattern").asText(), f);
    }
    for (String ok : List.of("*", "spiffe://td/ns/x/*", "*/sa/foo", "spiffe://td/ns/a/sa/b")) {
      assertTrue(ok.matches(pattern), ok);
    }
    for (String bad : List.of("a*b", "**", "*a*")) {
      assertTrue(!bad.matches(pattern), bad);
    }
    assertEquals(
        65535, spec.at("/rules/items/properties/to/items/properties/ports/items/maximum").asInt());
  }

  @Test
  void peerAuthenticationCrdMatchesTheSourceAndTheParser() throws Exception {
    JsonNode crd = crd("peerauthentications.security.nodemesh.dev.yaml");
    assertEquals("security.nodemesh.dev", crd.at("/spec/group").asText());
    assertEquals("PeerAuthentication", crd.at("/spec/names/kind").asText());
    assertEquals("peerauthentications", crd.at("/spec/names/plural").asText());
    assertEquals("v1alpha1", crd.at("/spec/versions/0/name").asText());
    JsonNode mode =
        crd.at(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/mtls/properties/mode");
    List<String> modes = new ArrayList<>();
    for (PeerAuthentication.Mode m : PeerAuthentication.Mode.values()) {
      if (m != PeerAuthentication.Mode.MODE_UNSPECIFIED
          && m != PeerAuthentication.Mode.UNRECOGNIZED) {
        modes.add(m.name());
      }
    }
    assertEquals(modes, texts(mode.path("enum")));
  }

  @Test
  void trafficPolicyCrdMatchesTheParser() throws Exception {
    JsonNode crd = crd("trafficpolicies.traffic.nodemesh.dev.yaml");
    assertEquals(
        dev.nodemesh.model.config.TrafficPolicy.API_VERSION,
        crd.at("/spec/group").asText() + "/" + crd.at("/spec/versions/0/name").asText());
    assertEquals("TrafficPolicy", crd.at("/spec/names/kind").asText());
    assertEquals("trafficpolicies", crd.at("/spec/names/plural").asText());
    JsonNode spec = crd.at("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties");
    List<String> algorithms = new ArrayList<>();
    for (var a : dev.nodemesh.model.config.TrafficPolicy.Algorithm.values()) {
      algorithms.add(a.name());
    }
    assertEquals(algorithms, texts(spec.at("/loadBalancer/properties/algorithm/enum")));
    List<String> sections = new ArrayList<>();
    spec.fieldNames().forEachRemaining(sections::add);
    assertEquals(
        List.of(
            "targetRef",
            "loadBalancer",
            "circuitBreaker",
            "outlierDetection",
            "retry",
            "rateLimit",
            "tcpIdleTimeout"),
        sections);
    assertEquals(
        dev.nodemesh.model.config.TrafficPolicyParser.MAX_SOURCES_LIMIT,
        spec.at("/rateLimit/properties/maxSources/maximum").asInt());
  }
}
