package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigDumpTest {
  @TempDir Path dir;

  @Test
  void dumpsVersionWorkloadsAndServicesWithEndpoints() throws Exception {
    MeshYaml.write(
        dir,
        "mesh.yaml",
        MeshYaml.docs(
            MeshYaml.pod(
                "shop", "web-1", "10.1.0.5", "{app: web}", "[{name: http, containerPort: 8080}]"),
            MeshYaml.pod("shop", "db-1", "10.1.0.6", "{app: db}", "[]"),
            MeshYaml.service(
                "shop",
                "web",
                "[\"10.96.0.20\"]",
                "{app: web}",
                "[{name: http, port: 80, targetPort: http, appProtocol: http}]")));
    ConfigSnapshot snapshot = ConfigLoader.load(dir, 7);

    JsonNode dump = new ObjectMapper().readTree(ConfigDump.json(snapshot));

    assertEquals(7, dump.get("version").asLong());
    assertEquals(2, dump.get("workloads").size());
    JsonNode web = dump.get("workloads").get(1);
    assertEquals("web-1", web.get("name").asText(), dump.toPrettyString());
    assertEquals("10.1.0.5", web.get("ips").get(0).asText());
    assertEquals("web", web.get("labels").get("app").asText());
    assertEquals(8080, web.get("namedPorts").get("http").asInt());
    JsonNode service = dump.get("services").get(0);
    assertEquals("10.96.0.20", service.get("vips").get(0).asText());
    assertEquals("http", service.get("ports").get(0).get("targetPortName").asText());
    assertEquals("[\"shop/web-1\"]", service.get("endpoints").toString());
    assertEquals(ConfigDump.json(snapshot), ConfigDump.json(snapshot), "stable output");
  }

  @Test
  void listsHeldCertificatesByIdSerialAndExpiryOnly() throws Exception {
    ConfigSnapshot snapshot = ConfigSnapshot.empty();
    java.time.Instant notAfter = java.time.Instant.parse("2026-11-23T12:00:00Z");
    JsonNode dump =
        new ObjectMapper()
            .readTree(
                ConfigDump.json(
                    snapshot,
                    java.util.List.of(
                        new dev.nodemesh.proxy.identity.HeldCertificate(
                            new dev.nodemesh.model.identity.SpiffeId(
                                "cluster.local", "shop", "web"),
                            "1f2e",
                            notAfter))));
    JsonNode cert = dump.get("certificates").get(0);
    assertEquals("spiffe://cluster.local/ns/shop/sa/web", cert.get("spiffeId").asText());
    assertEquals("1f2e", cert.get("serial").asText());
    assertEquals("2026-11-23T12:00:00Z", cert.get("notAfter").asText());
    assertEquals(3, cert.size(), "no key, nothing else");
    assertEquals(null, new ObjectMapper().readTree(ConfigDump.json(snapshot)).get("certificates"));
  }

  @Test
  void dumpsPoliciesAndPeerAuthentications() throws Exception {
    MeshYaml.write(
        dir,
        "mesh.yaml",
        MeshYaml.docs(
            MeshYaml.authorizationPolicy(
                "shop",
                "allow-web",
                "{selector: {matchLabels: {app: web}}, rules: [{from: [{principals: [\"*/sa/web\"],"
                    + " ipBlocks: [10.1.0.0/16]}], to: [{ports: [8080]}]}]}"),
            MeshYaml.authorizationPolicy("nodemesh-system", "deny-all", "{}"),
            MeshYaml.peerAuthentication("shop", "strict", "{mtls: {mode: STRICT}}")));

    JsonNode dump = new ObjectMapper().readTree(ConfigDump.json(ConfigLoader.load(dir)));

    JsonNode policies = dump.get("authorizationPolicies");
    assertEquals(2, policies.size(), dump.toPrettyString());
    assertEquals("deny-all", policies.get(0).get("name").asText()); // nodemesh-system sorts first
    assertEquals("[]", policies.get(0).get("rules").toString());
    JsonNode allow = policies.get(1);
    assertEquals("ALLOW", allow.get("action").asText());
    assertEquals("web", allow.get("selector").get("app").asText());
    assertEquals(
        "{\"principals\":[\"*/sa/web\"],\"ipBlocks\":[\"10.1.0.0/16\"]}",
        allow.get("rules").get(0).get("from").get(0).toString());
    assertEquals("[8080]", allow.get("rules").get(0).get("to").get(0).get("ports").toString());
    JsonNode strict = dump.get("peerAuthentications").get(0);
    assertEquals("STRICT", strict.get("mode").asText());
    assertEquals(null, strict.get("selector"));
  }
}
