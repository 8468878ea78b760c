package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.TestJson;
import dev.nodemesh.model.cni.AgentWire.Pod;
import dev.nodemesh.model.cni.JsonTrees;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzzes the plugin's whole input, the {@code CNI_*} environment and stdin, through {@link
 * Plugin#run} with the real netns check and an in-memory agent that may fail. Every input must get
 * either a success (empty, or one JSON result) with exit 0, or exactly one CNI error object with
 * exit 1; nothing may escape {@code run} (an exception is a finding), and a failed ADD leaves no
 * record behind.
 *
 * <p>The input's tail picks the environment (FuzzedDataProvider reads numbers from the end); the
 * rest is stdin. When stdin decodes to a JSON object, its {@code runDir} and {@code agentSocket}
 * are pinned to this test's directory so that the fuzzer, running as root, writes nowhere else.
 *
 * <p>Regression mode (every test run) replays {@code src/test/resources/.../PluginFuzzTestInputs};
 * {@code scripts/fuzz} mutates it (30 s in every {@code scripts/test}, longer by hand).
 */
class PluginFuzzTest {
  private static ScratchNetns netns;
  private static Path dir;

  @BeforeAll
  static void setUp() throws Exception {
    netns = ScratchNetns.start();
    dir = Files.createTempDirectory("nodemesh-cni-fuzz");
  }

  @AfterAll
  static void tearDown() throws Exception {
    netns.close();
    clean();
    Files.deleteIfExists(dir.resolve("run"));
    Files.deleteIfExists(dir);
  }

  private static void clean() throws IOException {
    Path run = dir.resolve("run");
    if (Files.isDirectory(run)) {
      try (Stream<Path> s = Files.list(run)) {
        for (Path p : s.toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  /** An agent in memory whose answer the input chooses. */
  private static Agent agent(int mode) {
    return new Agent() {
      @Override
      public boolean addPod(Pod pod) throws AgentException {
        return answer();
      }

      @Override
      public boolean delPod(String uid, String netnsPath) throws AgentException {
        return answer();
      }

      @Override
      public List<Pod> listPods() throws AgentException {
        answer();
        return List.of();
      }

      private boolean answer() throws AgentException {
        return switch (mode) {
          case 0 -> true;
          case 1 -> throw new AgentException("refused");
          default -> throw new IllegalStateException("agent broke");
        };
      }

      @Override
      public void close() {}
    };
  }

  private static final String[] COMMANDS = {"ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"};

  @FuzzTest(maxDuration = "30s")
  void pluginAnswersEveryInputWithOneObject(FuzzedDataProvider data) throws Exception {
    Map<String, String> env = new HashMap<>();
    int c = data.consumeInt(0, COMMANDS.length);
    env.put("CNI_COMMAND", c < COMMANDS.length ? COMMANDS[c] : data.consumeString(24));
    String containerId =
        switch (data.consumeInt(0, 2)) {
          case 0 -> "c0ffee01";
          case 1 -> data.consumeString(300);
          default -> null;
        };
    if (containerId != null) {
      env.put("CNI_CONTAINERID", containerId);
    }
    switch (data.consumeInt(0, 3)) {
      case 0 -> env.put("CNI_NETNS", netns.path());
      case 1 -> env.put("CNI_NETNS", "/proc/self/ns/net");
      case 2 -> env.put("CNI_NETNS", data.consumeString(120));
      default -> {}
    }
    env.put("CNI_IFNAME", data.consumeBoolean() ? "eth0" : data.consumeString(24));
    env.put("CNI_PATH", "/opt/cni/bin");
    env.put(
        "CNI_ARGS",
        data.consumeBoolean()
            ? "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart;K8S_POD_UID=u-1"
            : data.consumeString(400));
    int agentMode = data.consumeInt(0, 2);
    byte[] stdin = pinPaths(data.consumeRemainingAsBytes());

    Plugin plugin =
        new Plugin(
            (socket, deadline) -> agent(agentMode),
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    Plugin.Response r = plugin.run(env, stdin);
    try {
      if (r.exitCode() == 0) {
        if (!r.stdout().isEmpty()) {
          assertTrue(oneObject(r.stdout()).isObject(), r.stdout());
        }
      } else {
        assertEquals(1, r.exitCode());
        JsonNode e = oneObject(r.stdout());
        assertTrue(e.path("code").isInt(), r.stdout());
        assertTrue(e.path("msg").isTextual(), r.stdout());
        if ("ADD".equals(env.get("CNI_COMMAND"))) {
          // The run dir is emptied after every input, so any record now is this ADD's. (The
          // container ID itself may be no valid file name: the first finding was this harness
          // building a path from an ID with a NUL, which the plugin had refused.)
          assertFalse(hasRecords(), "a failed ADD left its record: " + r.stdout());
        }
      }
    } finally {
      clean();
    }
  }

  private static boolean hasRecords() throws IOException {
    Path run = dir.resolve("run");
    if (!Files.isDirectory(run)) {
      return false;
    }
    try (Stream<Path> s = Files.list(run)) {
      return s.anyMatch(p -> p.getFileName().toString().endsWith(".json"));
    }
  }

  private static JsonNode oneObject(String stdout) throws IOException {
    return TestJson.JSON
        .readerFor(JsonNode.class)
        .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
        .readValue(stdout);
  }

  /** Where stdin is a JSON object, its paths point into this test's directory. */
  private static byte[] pinPaths(byte[] stdin) {
    JsonNode tree;
    try {
      tree = JsonTrees.read(stdin, InputLimits.JSON);
    } catch (IOException | RuntimeException e) {
      return stdin;
    }
    if (!(tree instanceof ObjectNode o)) {
      return stdin;
    }
    o.put("runDir", dir.resolve("run").toString());
    o.put("agentSocket", dir.resolve("agent.sock").toString());
    try {
      return TestJson.JSON.writeValueAsBytes(o);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
