package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.cni.spec.TestJson;
import dev.nodemesh.model.cni.AgentWire.Pod;
import dev.nodemesh.model.cni.PodRecords;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a runtime (or whoever can write a conflist or set a runtime's arguments) may hand the plugin
 * that is not a pod: the host's namespace, oversized fields, garbage. Each answer is exactly one
 * CNI error object on stdout with a non-zero exit, and a failed ADD leaves no record. In-process
 * through {@link Plugin#run} and, for the cases that matter most, exec'd through the real wrapper
 * as a runtime calls it.
 */
class HostileInputTest {
  private static ScratchNetns netns;

  @TempDir Path tmp;
  private FakeAgentServer agent;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();

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
  }

  @AfterEach
  void tearDown() throws Exception {
    agent.close();
  }

  private Plugin plugin(Plugin.AgentFactory agents) {
    return new Plugin(agents, new PrintStream(log, true, StandardCharsets.UTF_8));
  }

  private Plugin plugin() {
    return Plugin.standardWith(new PrintStream(log, true, StandardCharsets.UTF_8));
  }

  private String conf() {
    return """
        {"cniVersion": "1.0.0", "name": "net", "type": "nodemesh",
         "agentSocket": "%s", "runDir": "%s", "prevResult": %s}
        """
        .formatted(
            tmp.resolve("agent.sock"), tmp.resolve("run"), PluginSpecTest.prevResult("1.0.0"));
  }

  private static Map<String, String> env(String command) {
    return new HashMap<>(PluginSpecTest.env(command, netns.path()));
  }

  private Path record() {
    return tmp.resolve("run/c0ffee01.json");
  }

  /** Whether {@code path} is readable and this process's network namespace. */
  static boolean sameAsOwnNetns(String path) {
    try {
      return Files.readSymbolicLink(Path.of(path))
          .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
    } catch (java.io.IOException e) {
      return false;
    }
  }

  /** Exactly one JSON object with an int code, on stdout, with exit 1; returns its code. */
  static int oneErrorObject(int exit, String stdout) throws Exception {
    assertEquals(1, exit, stdout);
    JsonNode e =
        TestJson.JSON
            .readerFor(JsonNode.class)
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .readValue(stdout);
    assertTrue(e.isObject(), stdout);
    assertTrue(e.path("code").isInt(), stdout);
    assertTrue(e.path("msg").isTextual(), stdout);
    assertTrue(e.path("cniVersion").isTextual(), stdout);
    return e.path("code").asInt();
  }

  private static int oneErrorObject(Plugin.Response r) throws Exception {
    return oneErrorObject(r.exitCode(), r.stdout());
  }

  private Plugin.Response run(Map<String, String> env, String stdin) {
    return plugin().run(env, stdin.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void theHostsNamespaceIsRefusedWithoutARecordOrAnAgentCall() throws Exception {
    for (String host : List.of("/proc/self/ns/net", "/proc/1/ns/net")) {
      Map<String, String> e = env("ADD");
      e.put("CNI_NETNS", host);
      Plugin.Response r = run(e, conf());
      assertEquals(4, oneErrorObject(r));
      assertTrue(r.stdout().contains("CNI_NETNS"), r.stdout());
    }
    assertFalse(Files.exists(record()));
    assertTrue(agent.calls.isEmpty(), agent.calls.toString());
  }

  @Test
  void oversizedStdinIsOneErrorObject() throws Exception {
    String big = "{\"cniVersion\": \"1.0.0\", \"name\": \"" + "x".repeat(10 << 20) + "\"}";
    assertEquals(6, oneErrorObject(run(env("ADD"), big)));
    byte[] exact = new byte[InputLimits.MAX_STDIN_BYTES + 1];
    java.util.Arrays.fill(exact, (byte) ' ');
    assertEquals(6, oneErrorObject(plugin().run(env("ADD"), exact)));
    assertEquals(6, oneErrorObject(plugin().run(Map.of("CNI_COMMAND", "VERSION"), exact)));
    assertFalse(Files.exists(record()));
  }

  @Test
  void anOversizedStringAnywhereIsNamed() throws Exception {
    String longValue = "v".repeat(InputLimits.MAX_JSON_STRING + 1);
    Plugin.Response r =
        run(env("ADD"), conf().replace("\"name\": \"net\"", "\"name\": \"" + longValue + "\""));
    assertEquals(7, oneErrorObject(r));
    assertTrue(r.stdout().contains("/name"), r.stdout());
    r =
        run(
            env("ADD"),
            conf()
                .replace(
                    "\"routes\": [{\"dst\": \"0.0.0.0/0\"}]",
                    "\"routes\": [{\"dst\": \"" + longValue + "\"}]"));
    assertEquals(7, oneErrorObject(r));
    assertTrue(r.stdout().contains("/prevResult/routes/0/dst"), r.stdout());
    r = run(env("ADD"), conf().replace("\"type\"", "\"" + longValue + "\": 1, \"type\""));
    assertEquals(7, oneErrorObject(r));
    assertTrue(r.stdout().contains("key"), r.stdout());
    // Exactly at the limit is fine (and the plugin goes on to its usual answer).
    String atLimit = "v".repeat(InputLimits.MAX_JSON_STRING);
    r = run(env("ADD"), conf().replace("\"type\"", "\"x-extra\": \"" + atLimit + "\", \"type\""));
    assertEquals(0, r.exitCode(), r.stdout());
    assertFalse(agent.calls.stream().filter(c -> c.startsWith("add")).toList().size() != 1);
  }

  @Test
  void deepNestingIsOneErrorObject() throws Exception {
    String deep = "[".repeat(5000) + "]".repeat(5000);
    assertEquals(
        6, oneErrorObject(run(env("ADD"), "{\"cniVersion\":\"1.0.0\",\"x\":" + deep + "}")));
    String nested =
        "{\"a\":".repeat(InputLimits.MAX_JSON_DEPTH + 1)
            + "1"
            + "}".repeat(InputLimits.MAX_JSON_DEPTH + 1);
    assertEquals(6, oneErrorObject(run(env("ADD"), nested)));
    String longNumber = "{\"cniVersion\":\"1.0.0\",\"n\":" + "9".repeat(100_000) + "}";
    assertEquals(6, oneErrorObject(run(env("ADD"), longNumber)));
  }

  @Test
  void everyEnvironmentVariableHasALimit() throws Exception {
    for (Map.Entry<String, Integer> lim : InputLimits.MAX_ENV.entrySet()) {
      Map<String, String> e = env("ADD");
      e.put(lim.getKey(), "a".repeat(lim.getValue() + 1));
      Plugin.Response r = run(e, conf());
      assertEquals(4, oneErrorObject(r), lim.getKey());
      assertTrue(r.stdout().contains(lim.getKey()), r.stdout());
      assertFalse(r.stdout().contains("a".repeat(lim.getValue())), "the value is not echoed");
    }
    for (Map.Entry<String, Integer> lim : InputLimits.MAX_ARG.entrySet()) {
      Map<String, String> e = env("ADD");
      e.put("CNI_ARGS", lim.getKey() + "=" + "b".repeat(lim.getValue() + 1));
      Plugin.Response r = run(e, conf());
      assertEquals(4, oneErrorObject(r), lim.getKey());
      assertTrue(r.stdout().contains(lim.getKey()), r.stdout());
    }
    assertFalse(Files.exists(record()));
    assertTrue(agent.calls.isEmpty(), agent.calls.toString());
  }

  @Test
  void aFailedAddRemovesItsRecordWhateverFailed() throws Exception {
    agent.refuse = true;
    assertEquals(11, oneErrorObject(run(env("ADD"), conf())));
    assertFalse(Files.exists(record()), "agent refused");
    agent.close();
    assertEquals(11, oneErrorObject(run(env("ADD"), conf())));
    assertFalse(Files.exists(record()), "agent down");

    Plugin broken =
        plugin(
            (socket, deadline) -> {
              throw new IllegalStateException("boom");
            });
    Plugin.Response r = broken.run(env("ADD"), conf().getBytes(StandardCharsets.UTF_8));
    assertEquals(999, oneErrorObject(r));
    assertFalse(Files.exists(record()), "runtime exception");

    Plugin dying =
        plugin(
            (socket, deadline) -> {
              throw new OutOfMemoryError("simulated");
            });
    assertThrows(
        OutOfMemoryError.class,
        () -> dying.run(env("ADD"), conf().getBytes(StandardCharsets.UTF_8)));
    assertFalse(Files.exists(record()), "error: CniMain answers, the record is gone already");
    try (var files = Files.list(tmp.resolve("run"))) {
      assertEquals(0, files.count(), "no temp files either");
    }
  }

  @Test
  void aFailedRepeatOfAnAddKeepsTheEarlierRecord() throws Exception {
    assertEquals(0, run(env("ADD"), conf()).exitCode());
    PodRecords.Record earlier = new PodRecords(tmp.resolve("run")).read("c0ffee01");
    assertNotNull(earlier);
    agent.refuse = true;
    Map<String, String> again = env("ADD");
    again.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=other;K8S_POD_UID=u-999");
    assertEquals(11, oneErrorObject(run(again, conf())));
    assertEquals(earlier, new PodRecords(tmp.resolve("run")).read("c0ffee01"));
    Pod enrolled = agent.pods.get("u-123");
    assertNotNull(enrolled);
  }

  @Test
  void randomBytesAreOneErrorObject() throws Exception {
    Random rnd = new Random(16);
    for (int i = 0; i < 200; i++) {
      byte[] junk = new byte[rnd.nextInt(2048)];
      rnd.nextBytes(junk);
      Plugin.Response r = plugin().run(env(i % 2 == 0 ? "ADD" : "CHECK"), junk);
      oneErrorObject(r);
    }
    assertFalse(Files.exists(record()));
  }

  // Through the real wrapper, as a runtime execs it.

  @Test
  void execTheHostsNamespaceIsRefused() throws Exception {
    Map<String, String> e = env("ADD");
    e.put("CNI_NETNS", "/proc/1/ns/net");
    WrapperTest.Run r = WrapperTest.exec(e, conf());
    assertEquals(4, oneErrorObject(r.exit(), r.stdout()), r.stdout());
    if (sameAsOwnNetns("/proc/1/ns/net")) {
      assertTrue(r.stdout().contains("host's"), r.stdout());
    }
    assertFalse(Files.exists(record()));
  }

  @Test
  void execATenMegabyteFieldIsOneErrorObjectAndNoTrace() throws Exception {
    String big = conf().replace("\"name\": \"net\"", "\"name\": \"" + "x".repeat(10 << 20) + "\"");
    WrapperTest.Run r = WrapperTest.exec(env("ADD"), big);
    assertEquals(6, oneErrorObject(r.exit(), r.stdout()), r.stderr());
    assertFalse(r.stderr().contains("OutOfMemoryError"), r.stderr());
    assertFalse(r.stdout().contains("Exception"), r.stdout());
    assertFalse(Files.exists(record()));
  }

  @Test
  void execAgentDownLeavesNoRecord() throws Exception {
    agent.close();
    WrapperTest.Run r = WrapperTest.exec(env("ADD"), conf());
    assertEquals(11, oneErrorObject(r.exit(), r.stdout()));
    assertFalse(Files.exists(record()));
  }

  @Test
  void execGarbageIsOneErrorObject() throws Exception {
    WrapperTest.Run r = WrapperTest.exec(env("ADD"), "\u0000\u00ff{{{\"cniVersion\": [");
    assertEquals(6, oneErrorObject(r.exit(), r.stdout()));
    r = WrapperTest.exec(Map.of("CNI_COMMAND", "ADD"), "");
    oneErrorObject(r.exit(), r.stdout());
  }
}
