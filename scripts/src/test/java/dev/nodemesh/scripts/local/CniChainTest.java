package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.runner.CniRunner;
import dev.nodemesh.scripts.local.Manifest.AppSpec;
import dev.nodemesh.scripts.local.Manifest.PodSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CniChainTest {
  @TempDir Path run;

  private static final PodSpec A =
      new PodSpec("a", "shop", "uid-a", "10.213.0.10", new AppSpec.None(), "n1");
  private static final PodSpec B =
      new PodSpec("b", "shop", "uid-b", "10.213.1.10", new AppSpec.None(), "n2");

  @Test
  void bridgeThenHostLocalThenNodemeshWithEverythingUnderTheRunDir() throws Exception {
    Topology t =
        Topology.of(new Manifest(List.of(A, B), List.of()), "x", "10.96.0.0/16", "10.210.0.0/24");
    ObjectNode list =
        CniChain.conflist(
            "nm1a2b-n2", "nm1a2bbr1", t, t.nodes().get(1), run, run.resolve("agent-n2.sock"));
    // What the runner accepts, and what a runtime would read.
    CniRunner.parseConflist(list.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
    assertEquals("1.0.0", list.path("cniVersion").asText());
    JsonNode bridge = list.path("plugins").path(0);
    assertEquals("bridge", bridge.path("type").asText());
    assertEquals("nm1a2bbr1", bridge.path("bridge").asText());
    assertEquals(true, bridge.path("isGateway").asBoolean());
    assertEquals(false, bridge.path("ipMasq").asBoolean(true));
    JsonNode ipam = bridge.path("ipam");
    assertEquals("host-local", ipam.path("type").asText());
    assertEquals(run.resolve("cni/ipam").toString(), ipam.path("dataDir").asText());
    assertEquals("10.213.1.0/24", ipam.path("ranges").path(0).path(0).path("subnet").asText());
    assertEquals("10.213.1.1", ipam.path("ranges").path(0).path(0).path("gateway").asText());
    assertEquals(
        "[{\"dst\":\"10.213.0.0/23\"},{\"dst\":\"10.96.0.0/16\"}]", ipam.path("routes").toString());
    JsonNode nm = list.path("plugins").path(1);
    assertEquals("nodemesh", nm.path("type").asText());
    assertEquals(run.resolve("agent-n2.sock").toString(), nm.path("agentSocket").asText());
    assertEquals(run.resolve("cni/pods/nm1a2b-n2").toString(), nm.path("runDir").asText());
    assertEquals(2, list.path("plugins").size());

    Path file = CniChain.writeConflist(run, list);
    assertEquals(run.resolve("cni/nm1a2b-n2.conflist"), file);
    assertEquals(list, CniChain.readConflist(file));
  }

  @Test
  void withoutAProxyTheChainIsBridgeAndHostLocalOnly() {
    Topology t =
        Topology.of(new Manifest(List.of(A), List.of()), "x", "10.96.0.0/16", "10.210.0.0/24");
    ObjectNode list = CniChain.conflist("net", "br", t, t.nodes().get(0), run, null);
    assertEquals(1, list.path("plugins").size());
    assertEquals("[{\"dst\":\"10.96.0.0/16\"}]", list.at("/plugins/0/ipam/routes").toString());
  }

  @Test
  void argsAskHostLocalForThePodsYamlIpAndNameThePod() {
    assertEquals(
        Map.of(
            "IgnoreUnknown", "1",
            "K8S_POD_NAMESPACE", "shop",
            "K8S_POD_NAME", "a",
            "K8S_POD_UID", "uid-a",
            "IP", "10.213.0.10"),
        CniChain.args(A));
  }

  @Test
  void thePluginScriptRunsTheRealWrapperWithThisJava() throws Exception {
    Path wrapper = CniChain.locateWrapper();
    assertEquals(Path.of("../cni-plugin/bin/nodemesh-cni").toAbsolutePath().normalize(), wrapper);
    CniChain.installPlugin(run, wrapper);
    String script = Files.readString(run.resolve("cni/bin/nodemesh"));
    assertFalse(script.isEmpty());
    assertEquals(true, script.contains("exec '" + wrapper + "'"));
    assertEquals(true, Files.isExecutable(run.resolve("cni/bin/nodemesh")));
  }
}
