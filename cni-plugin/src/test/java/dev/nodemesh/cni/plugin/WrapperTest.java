package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.cni.spec.TestJson;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real {@code bin/nodemesh-cni} wrapper over {@code target/cni-lib}, as a runtime execs it:
 * proves the minimal class path is enough (with and without the AOT cache), that it holds no gRPC,
 * Netty or protobuf, and that a cache the JDK cannot use changes nothing. ADD start-up is measured
 * by {@code scripts/bench/cni-add}, through a real runtime's chain.
 */
class WrapperTest {
  static final Path WRAPPER = Path.of("bin/nodemesh-cni").toAbsolutePath();
  static final Path LIB = Path.of("target/cni-lib").toAbsolutePath();

  @TempDir Path tmp;
  private FakeAgentServer agent;
  private static ScratchNetns netns;

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

  record Run(int exit, String stdout, String stderr, long nanos) {}

  static Run exec(Map<String, String> cniEnv, String stdin, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of(WRAPPER.toString()));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().keySet().removeIf(k -> k.startsWith("CNI_"));
    pb.environment().putAll(cniEnv);
    pb.environment()
        .put(
            "NODEMESH_CNI_JAVA",
            Path.of(System.getProperty("java.home"), "bin", "java").toString());
    long t0 = System.nanoTime();
    Process p = pb.start();
    CompletableFuture<byte[]> err =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return p.getErrorStream().readAllBytes();
              } catch (IOException e) {
                return new byte[0];
              }
            });
    try (var in = p.getOutputStream()) {
      in.write(stdin.getBytes(StandardCharsets.UTF_8));
    }
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("wrapper hung");
    }
    long nanos = System.nanoTime() - t0;
    return new Run(
        p.exitValue(),
        new String(out, StandardCharsets.UTF_8),
        new String(err.get(), StandardCharsets.UTF_8),
        nanos);
  }

  private String conf() {
    return """
        {"cniVersion": "1.1.0", "name": "net", "type": "nodemesh",
         "agentSocket": "%s", "runDir": "%s", "prevResult": %s}
        """
        .formatted(
            tmp.resolve("agent.sock"), tmp.resolve("run"), PluginSpecTest.prevResult("1.1.0"));
  }

  private static Map<String, String> env(String command, String id) {
    Map<String, String> env = new HashMap<>(PluginSpecTest.env(command, netns.path()));
    env.put("CNI_CONTAINERID", id);
    env.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=" + id + ";K8S_POD_UID=u-" + id);
    return env;
  }

  private void addAndDel(String id) throws Exception {
    Run add = exec(env("ADD", id), conf());
    assertEquals(0, add.exit(), add.stdout() + add.stderr());
    assertEquals(
        TestJson.JSON.readTree(PluginSpecTest.prevResult("1.1.0")),
        TestJson.JSON.readTree(add.stdout()));
    assertEquals("", add.stderr().strip(), "stderr should be quiet");
    assertTrue(agent.pods.containsKey("u-" + id));
    Run del = exec(env("DEL", id), conf());
    assertEquals(0, del.exit(), del.stdout() + del.stderr());
    assertEquals("", del.stdout());
  }

  /** Removes what {@code train} makes: the start-up cache (and whatever an older train left). */
  static void untrain() throws IOException {
    try (var s = Files.list(LIB)) {
      for (Path p : s.filter(p -> !p.toString().endsWith(".jar")).toList()) {
        Files.delete(p);
      }
    }
  }

  @Test
  void versionAddAndDelWorkOnTheMinimalClassPathWithAndWithoutTheAotCache() throws Exception {
    untrain();
    Run v = exec(Map.of("CNI_COMMAND", "VERSION"), "{\"cniVersion\":\"1.0.0\"}");
    assertEquals(0, v.exit(), v.stderr());
    JsonNode j = TestJson.JSON.readTree(v.stdout());
    assertEquals("1.0.0", j.path("cniVersion").asText());
    addAndDel("nocache");

    Run train = exec(Map.of(), "", "train");
    assertEquals(0, train.exit(), train.stdout() + train.stderr());
    // The tests run on JDK 25, which makes the AOT cache (an older JDK gets the AppCDS archive).
    assertTrue(Files.exists(LIB.resolve("nodemesh-cni.aot")), train.stderr());
    assertFalse(Files.exists(LIB.resolve("nodemesh-cni.jsa")));
    addAndDel("withcache");
  }

  /** The point of the framed agent protocol: a pod start loads no gRPC, Netty or protobuf. */
  @Test
  void anAddLoadsNoGrpcNettyOrProtobuf() throws Exception {
    try (var s = Files.list(LIB)) {
      List<String> jars = s.map(p -> p.getFileName().toString()).sorted().toList();
      assertTrue(
          jars.stream().noneMatch(n -> n.matches("(grpc|netty|protobuf|guava).*")),
          jars.toString());
    }
    Path classes = tmp.resolve("classes.log");
    Map<String, String> e = env("ADD", "classes");
    e.put("JAVA_TOOL_OPTIONS", "-Xlog:class+load:file=" + classes);
    Run add = exec(e, conf());
    assertEquals(0, add.exit(), add.stdout() + add.stderr());
    List<String> loaded = Files.readAllLines(classes);
    assertTrue(
        loaded.stream().anyMatch(l -> l.contains(" dev.nodemesh.cni.plugin.FramedAgent ")),
        "the log should name the plugin's own classes");
    List<String> foreign =
        loaded.stream()
            .filter(l -> l.matches(".* (io\\.grpc|io\\.netty|com\\.google\\.protobuf)\\..*"))
            .toList();
    assertEquals(List.of(), foreign);
  }

  /** A cache the JDK cannot use (stale, truncated, another JDK's) is ignored, never a failure. */
  @Test
  void aBrokenCacheIsIgnored() throws Exception {
    untrain();
    try {
      Files.writeString(LIB.resolve("nodemesh-cni.aot"), "not a cache");
      Run add = exec(env("ADD", "broken"), conf());
      assertEquals(0, add.exit(), add.stdout() + add.stderr());
      assertEquals(
          TestJson.JSON.readTree(PluginSpecTest.prevResult("1.1.0")),
          TestJson.JSON.readTree(add.stdout()));
    } finally {
      untrain();
    }
  }

  @Test
  void agentDownIsCode11FromTheWrapperToo() throws Exception {
    agent.close();
    Run add = exec(env("ADD", "down"), conf());
    assertEquals(1, add.exit());
    assertEquals(11, TestJson.JSON.readTree(add.stdout()).path("code").asInt(), add.stdout());
  }
}
