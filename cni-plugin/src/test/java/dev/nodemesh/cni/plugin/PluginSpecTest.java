package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.TestJson;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The plugin against the CNI spec, for every supported cniVersion: commands, outputs, error codes.
 * A fake node agent answers on a real Unix socket.
 */
class PluginSpecTest {
  /** The pod's namespace: a real one, since ADD refuses anything else. */
  static ScratchNetns netns;

  @TempDir Path tmp;
  private FakeAgentServer agent;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();
  private Plugin plugin;

  @BeforeAll
  static void startNetns() throws Exception {
    netns = ScratchNetns.start();
  }

  @AfterAll
  static void stopNetns() throws Exception {
    netns.close();
  }

  @BeforeEach
  void setUp() throws Exception {
    agent = new FakeAgentServer(tmp.resolve("agent.sock"));
    plugin = Plugin.standardWith(new PrintStream(log, true, StandardCharsets.UTF_8));
  }

  @AfterEach
  void tearDown() throws Exception {
    agent.close();
  }

  static String prevResult(String version) {
    String v4 = version.startsWith("0.") ? "\"version\": \"4\"," : "";
    String v6 = version.startsWith("0.") ? "\"version\": \"6\"," : "";
    return """
        {"cniVersion": "%s",
         "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:01"},
                        {"name": "veth1", "mac": "aa:bb:cc:dd:ee:02"},
                        {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/var/run/netns/p1"}],
         "ips": [{%s "address": "10.22.0.5/16", "gateway": "10.22.0.1", "interface": 2},
                 {%s "address": "fd00::5/64", "interface": 2}],
         "routes": [{"dst": "0.0.0.0/0"}],
         "dns": {"nameservers": ["10.96.0.10"]}}
        """
        .formatted(version, v4, v6);
  }

  String conf(String version, boolean withPrev) {
    return """
        {"cniVersion": "%s", "name": "k8s-pod-network", "type": "nodemesh",
         "agentSocket": "%s", "runDir": "%s"%s}
        """
        .formatted(
            version,
            tmp.resolve("agent.sock"),
            tmp.resolve("run"),
            withPrev ? ", \"prevResult\": " + prevResult(version) : "");
  }

  static Map<String, String> env(String command) {
    return env(command, netns.path());
  }

  static Map<String, String> env(String command, String netnsPath) {
    Map<String, String> env = new HashMap<>();
    env.put("CNI_COMMAND", command);
    env.put("CNI_CONTAINERID", "c0ffee01");
    env.put("CNI_NETNS", netnsPath);
    env.put("CNI_IFNAME", "eth0");
    env.put("CNI_PATH", "/opt/cni/bin");
    env.put(
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-7d9;"
            + "K8S_POD_INFRA_CONTAINER_ID=c0ffee01;K8S_POD_UID=u-123");
    return env;
  }

  Plugin.Response call(Map<String, String> env, String stdin) {
    return plugin.run(env, stdin.getBytes(StandardCharsets.UTF_8));
  }

  static JsonNode json(Plugin.Response r) throws Exception {
    return TestJson.JSON.readTree(r.stdout());
  }

  static void assertError(int code, Plugin.Response r) throws Exception {
    assertEquals(1, r.exitCode(), r.stdout());
    JsonNode e = json(r);
    assertEquals(code, e.path("code").asInt(), r.stdout());
    assertTrue(e.path("msg").isTextual(), r.stdout());
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"})
  void addPassesPrevResultThroughAndEnrolsThePod(String version) throws Exception {
    Plugin.Response r = call(env("ADD"), conf(version, true));
    assertEquals(0, r.exitCode(), r.stdout());
    ObjectNode want = (ObjectNode) TestJson.JSON.readTree(prevResult(version));
    assertEquals(want, json(r));
    var pod = agent.pods.get("u-123");
    assertEquals("cart-7d9", pod.name());
    assertEquals("shop", pod.namespace());
    assertEquals(netns.path(), pod.netnsPath());
    assertEquals(List.of("10.22.0.5", "fd00::5"), pod.ips());
    assertTrue(Files.exists(tmp.resolve("run/c0ffee01.json")));
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"})
  void delTwiceSucceedsAndRemovesTheRecord(String version) throws Exception {
    assertEquals(0, call(env("ADD"), conf(version, true)).exitCode());
    for (int i = 0; i < 2; i++) {
      Plugin.Response r = call(env("DEL"), conf(version, true));
      assertEquals(0, r.exitCode(), r.stdout());
      assertEquals("", r.stdout());
    }
    assertFalse(agent.pods.containsKey("u-123"));
    assertFalse(Files.exists(tmp.resolve("run/c0ffee01.json")));
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.4.0", "1.0.0", "1.1.0"})
  void checkSucceedsOnlyWhileEnrolled(String version) throws Exception {
    assertError(100, call(env("CHECK"), conf(version, true)));
    assertEquals(0, call(env("ADD"), conf(version, true)).exitCode());
    Plugin.Response r = call(env("CHECK"), conf(version, true));
    assertEquals(0, r.exitCode(), r.stdout());
    assertEquals("", r.stdout());
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.3.0", "0.3.1"})
  void checkIsRefusedBefore040(String version) throws Exception {
    assertError(1, call(env("CHECK"), conf(version, true)));
  }

  @Test
  void checkNeedsPrevResult() throws Exception {
    assertError(7, call(env("CHECK"), conf("1.0.0", false)));
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"})
  void versionListsEverySupportedVersion(String version) throws Exception {
    Plugin.Response r =
        call(Map.of("CNI_COMMAND", "VERSION"), "{\"cniVersion\":\"" + version + "\"}");
    assertEquals(0, r.exitCode(), r.stdout());
    assertEquals(version, json(r).path("cniVersion").asText());
    assertEquals(
        TestJson.JSON.readTree("[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]"),
        json(r).path("supportedVersions"));
  }

  @Test
  void versionNeedsNoStdin() throws Exception {
    Plugin.Response r = call(Map.of("CNI_COMMAND", "VERSION"), "");
    assertEquals(0, r.exitCode());
    assertEquals("1.1.0", json(r).path("cniVersion").asText());
  }

  @Test
  void statusSucceedsOn110EvenWithTheAgentDown() throws Exception {
    agent.close();
    Plugin.Response r =
        call(Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", "/opt/cni/bin"), conf("1.1.0", false));
    assertEquals(0, r.exitCode(), r.stdout());
    assertEquals("", r.stdout());
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.3.1", "0.4.0", "1.0.0"})
  void statusAndGcAreRefusedBefore110(String version) throws Exception {
    assertError(1, call(Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", "/x"), conf(version, false)));
    assertError(1, call(Map.of("CNI_COMMAND", "GC", "CNI_PATH", "/x"), conf(version, false)));
  }

  @Test
  void gcRemovesRecordsTheRuntimeNoLongerLists() throws Exception {
    assertEquals(0, call(env("ADD"), conf("1.1.0", true)).exitCode());
    Map<String, String> other = env("ADD");
    other.put("CNI_CONTAINERID", "beef02");
    other.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web;K8S_POD_UID=u-456");
    assertEquals(0, call(other, conf("1.1.0", true)).exitCode());
    String gc =
        conf("1.1.0", false)
            .replaceFirst(
                "\\}\\s*$",
                ", \"cni.dev/valid-attachments\": [{\"containerID\": \"beef02\", \"ifname\": \"eth0\"}]}");
    Plugin.Response r = call(Map.of("CNI_COMMAND", "GC", "CNI_PATH", "/x"), gc);
    assertEquals(0, r.exitCode(), r.stdout());
    assertFalse(Files.exists(tmp.resolve("run/c0ffee01.json")));
    assertTrue(Files.exists(tmp.resolve("run/beef02.json")));
    assertEquals(List.of("u-456"), List.copyOf(agent.pods.keySet()));
  }

  @Test
  void malformedStdinIsDecodingFailure() throws Exception {
    assertError(6, call(env("ADD"), "{\"cniVersion\": \"1.0.0\", "));
    assertError(6, call(env("ADD"), "[1, 2]"));
    assertError(6, call(env("ADD"), ""));
  }

  @Test
  void missingPrevResultIsInvalidConfig() throws Exception {
    assertError(7, call(env("ADD"), conf("1.0.0", false)));
    assertTrue(agent.calls.isEmpty());
  }

  @Test
  void unknownOrMissingCniVersionIsIncompatible() throws Exception {
    Plugin.Response r = call(env("ADD"), conf("2.0.0", true));
    assertError(1, r);
    assertTrue(json(r).path("details").asText().contains("2.0.0"), r.stdout());
    assertError(1, call(env("ADD"), "{\"name\": \"n\", \"type\": \"nodemesh\"}"));
    assertError(1, call(env("ADD"), conf("0.2.0", true)));
  }

  @Test
  void missingEnvironmentIsInvalidEnvironment() throws Exception {
    Map<String, String> env = env("ADD");
    env.remove("CNI_NETNS");
    Plugin.Response r = call(env, conf("1.0.0", true));
    assertError(4, r);
    assertTrue(json(r).path("msg").asText().contains("CNI_NETNS"), r.stdout());
    assertError(4, call(Map.of(), conf("1.0.0", true)));
    Map<String, String> bad = env("ADD");
    bad.put("CNI_CONTAINERID", "../etc");
    assertError(4, call(bad, conf("1.0.0", true)));
    bad = env("ADD");
    bad.put("CNI_ARGS", "K8S_POD_NAME");
    assertError(4, call(bad, conf("1.0.0", true)));
  }

  @Test
  void envErrorsAnswerInTheConfigVersion() throws Exception {
    Plugin.Response r = call(Map.of("CNI_COMMAND", "ADD"), conf("0.4.0", true));
    assertError(4, r);
    assertEquals("0.4.0", json(r).path("cniVersion").asText());
  }

  @Test
  void concurrentAddsAndDelsOfManyPodsKeepTheirOwnRecords() throws Exception {
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newFixedThreadPool(8);
    try {
      List<java.util.concurrent.Future<Plugin.Response>> adds = new java.util.ArrayList<>();
      for (int i = 0; i < 40; i++) {
        Map<String, String> e = env("ADD");
        e.put("CNI_CONTAINERID", "ctr" + i);
        e.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=p" + i + ";K8S_POD_UID=u" + i);
        adds.add(pool.submit(() -> call(e, conf("1.0.0", true))));
      }
      for (var f : adds) {
        assertEquals(0, f.get().exitCode(), f.get().stdout());
      }
      assertEquals(40, agent.pods.size());
      try (var files = Files.list(tmp.resolve("run"))) {
        assertEquals(40, files.filter(p -> p.toString().endsWith(".json")).count());
      }
      List<java.util.concurrent.Future<Plugin.Response>> dels = new java.util.ArrayList<>();
      for (int i = 0; i < 40; i++) {
        Map<String, String> e = env("DEL");
        e.put("CNI_CONTAINERID", "ctr" + i);
        e.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=p" + i + ";K8S_POD_UID=u" + i);
        dels.add(pool.submit(() -> call(e, conf("1.0.0", true))));
      }
      for (var f : dels) {
        assertEquals(0, f.get().exitCode(), f.get().stdout());
      }
      assertTrue(agent.pods.isEmpty());
      try (var files = Files.list(tmp.resolve("run"))) {
        assertEquals(0, files.count(), "no records or temp files left");
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void delNeedsNoNetns() throws Exception {
    Map<String, String> env = env("DEL");
    env.remove("CNI_NETNS");
    assertEquals(0, call(env, conf("1.0.0", false)).exitCode());
  }

  @Test
  void wrongPluginKeyTypeIsInvalidConfig() throws Exception {
    String c =
        conf("1.0.0", true)
            .replace(
                "\"type\": \"nodemesh\"",
                "\"type\": \"nodemesh\", \"excludedNamespaces\": \"kube-system\"");
    assertError(7, call(env("ADD"), c));
  }

  @Test
  void agentDownMakesAddTryAgainLaterButDelSucceeds() throws Exception {
    agent.close();
    Plugin.Response r = call(env("ADD"), conf("1.0.0", true));
    assertError(11, r);
    assertEquals("1.0.0", json(r).path("cniVersion").asText());
    assertError(11, call(env("CHECK"), conf("1.0.0", true)));
    assertEquals(0, call(env("DEL"), conf("1.0.0", true)).exitCode());
    assertFalse(Files.exists(tmp.resolve("run/c0ffee01.json")));
  }

  @Test
  void agentRefusingMakesAddTryAgainLater() throws Exception {
    agent.refuse = true;
    assertError(11, call(env("ADD"), conf("1.0.0", true)));
    assertEquals(0, call(env("DEL"), conf("1.0.0", true)).exitCode());
  }

  @Test
  void excludedPodsPassThroughWithoutTheAgent() throws Exception {
    agent.close();
    Map<String, String> sys = env("ADD");
    sys.put("CNI_ARGS", "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1;K8S_POD_UID=u-9");
    Plugin.Response r = call(sys, conf("1.0.0", true));
    assertEquals(0, r.exitCode(), r.stdout());
    assertEquals(TestJson.JSON.readTree(prevResult("1.0.0")), json(r));
    assertFalse(Files.exists(tmp.resolve("run/c0ffee01.json")));

    String optOut =
        conf("1.0.0", true)
            .replace(
                "\"type\": \"nodemesh\"",
                "\"type\": \"nodemesh\", \"excludedNamespaces\": [], \"excludedPods\": [\"shop/cart-7d9\"]");
    assertEquals(0, call(env("ADD"), optOut).exitCode());
    sys.put("CNI_COMMAND", "CHECK");
    assertEquals(0, call(sys, conf("1.0.0", true)).exitCode());
  }

  @Test
  void prevResultIsConvertedToTheConfigVersion() throws Exception {
    // A 0.4.0 prevResult (with "version" on each IP) under a 1.0.0 config comes out as 1.0.0.
    String c =
        conf("1.0.0", false)
            .replaceFirst("\\}\\s*$", ", \"prevResult\": " + prevResult("0.4.0") + "}");
    Plugin.Response r = call(env("ADD"), c);
    assertEquals(0, r.exitCode(), r.stdout());
    assertEquals(TestJson.JSON.readTree(prevResult("1.0.0")), json(r));
  }

  @Test
  void addWithoutK8sArgsUsesTheContainerId() throws Exception {
    Map<String, String> env = env("ADD");
    env.remove("CNI_ARGS");
    assertEquals(0, call(env, conf("1.1.0", true)).exitCode());
    assertEquals("c0ffee01", agent.pods.get("c0ffee01").name());
    assertEquals("default", agent.pods.get("c0ffee01").namespace());
  }
}
