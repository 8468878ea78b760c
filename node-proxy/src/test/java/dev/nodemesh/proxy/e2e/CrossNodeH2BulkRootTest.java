package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.IdleLoops;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.transport.TransportKind;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Large HTTP/2 cleartext transfers through an HTTPRoute to a Service whose only endpoint is on the
 * other node (so through the client workload's HBONE tunnel), with an independent client that uses
 * large windows (python3-h2, 4 MiB per stream and 1 GiB per connection, as {@code h2load -w 22 -W
 * 30}): every byte arrives, sha256-checked, in both interception modes; a response the upstream
 * breaks off after its head is logged and counted as incomplete, never as a plain success; and no
 * event loop spins afterwards (the I/O threads' CPU time over an idle second, from ThreadMXBean).
 *
 * <p>Two upstreams on the same pod: one speaks h2c (the proxy runs HTTP/2 inside the CONNECT
 * stream), one HTTP/1.1; h2load, with the flags the issue used, goes to both.
 *
 * <p>Size: CI moves {@value #DEFAULT_MIB} MiB x {@value #DEFAULT_COUNT} each way per client and
 * mode (about 60-90 s for the class on an idle machine: the pure-python client and server are the
 * slow part). Issue 18's full run, 200 MiB each way x20, is {@code -Dnodemesh.crossnode.mib=200
 * -Dnodemesh.crossnode.count=20} (or the environment variables {@code NODEMESH_CROSSNODE_MIB} and
 * {@code NODEMESH_CROSSNODE_COUNT}); expect tens of minutes.
 */
@RootTest
@Timeout(value = 120, unit = TimeUnit.MINUTES) // the full-size run; each client process is bounded
@ParameterizedClass(name = "{0}")
@EnumSource(CrossNodeH2BulkRootTest.Kind.class)
class CrossNodeH2BulkRootTest {
  enum Kind {
    IPTABLES,
    EBPF
  }

  static final int DEFAULT_MIB = 16;
  static final int DEFAULT_COUNT = 3;
  private static final String VIP = "10.97.0.30";
  private static final String VIP1 = "10.97.0.31";
  private static final ObjectMapper JSON = new ObjectMapper();

  @Parameter Kind mode;
  @TempDir Path tmp;
  private TwoNodeCluster cluster;
  private final List<TestCgroup> cgroups = new ArrayList<>();
  private final List<TestBpffs> bpffs = new ArrayList<>();
  private final List<Path[]> attached = new ArrayList<>(); // {cgroup, pins}
  private final List<Process> processes = new ArrayList<>();
  private Path script;
  private Path accessLog;

  @BeforeEach
  void setUp() throws Exception {
    script = tmp.resolve("h2bulk.py");
    try (InputStream in = getClass().getResourceAsStream("/e2e/h2bulk.py")) {
      Files.write(script, in.readAllBytes());
    }
    accessLog = tmp.resolve("access-node-1.log");
    cluster = TwoNodeCluster.create(tmp);
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n2.addPod("bulk-1", 11);
    cluster.writeConfig(
        "pods.yaml",
        pod("client", n1.ip("client"), "client", "node-1")
            + pod("bulk-1", n2.ip("bulk-1"), "bulk", "node-2"));
    cluster.writeConfig(
        "services.yaml",
        SERVICE.formatted("bulk", VIP, "h2c", "kubernetes.io/h2c")
            + "---\n"
            + SERVICE.formatted("bulk1", VIP1, "http", "http"));
    cluster.writeConfig(
        "routes.yaml",
        ROUTE.formatted("bulk", "bulk", "bulk")
            + "---\n"
            + ROUTE.formatted("bulk1", "bulk1", "bulk1"));
    Process server =
        start(
            "ip",
            "netns",
            "exec",
            n2.pod("bulk-1").name(),
            "/usr/bin/python3",
            script.toString(),
            "serve",
            "8080");
    String first = new String(server.getInputStream().readNBytes(10), StandardCharsets.UTF_8);
    assertEquals("listening\n", first, "the python h2 server started");
    Process server1 =
        start(
            "ip",
            "netns",
            "exec",
            n2.pod("bulk-1").name(),
            "/usr/bin/python3",
            script.toString(),
            "serve1",
            "8081");
    first = new String(server1.getInputStream().readNBytes(10), StandardCharsets.UTF_8);
    assertEquals("listening\n", first, "the python HTTP/1.1 server started");
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    n1.startProxy(
        TransportKind.EPOLL,
        interception(),
        new TestIdentities(root),
        allow,
        AccessLogSettings.parse(accessLog.toString(), 1.0),
        TunnelSettings.defaults());
    n2.startProxy(
        TransportKind.EPOLL,
        interception(),
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF,
        TunnelSettings.defaults());
    n1.enrol("client");
    n2.enrol("bulk-1");
  }

  private InterceptionMode interception() throws IOException {
    if (mode == Kind.IPTABLES) {
      return InterceptionMode.iptables();
    }
    TestCgroup cg = TestCgroup.create("xn" + cgroups.size());
    cgroups.add(cg);
    TestBpffs fs = TestBpffs.mount();
    bpffs.add(fs);
    Path pins = fs.path().resolve("nodemesh");
    attached.add(new Path[] {cg.path(), pins});
    return InterceptionMode.ebpf(cg.path(), pins);
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      for (Process p : processes) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
      if (cluster != null) {
        cluster.close();
      }
      for (Path[] a : attached) {
        if (Files.exists(a[1])) {
          InterceptionPrograms.install(a[0], a[1]).uninstall();
        }
      }
    } finally {
      for (TestBpffs b : bpffs) {
        b.close();
      }
      for (TestCgroup c : cgroups) {
        c.close();
      }
    }
  }

  @Test
  void largeTransfersEachWayArriveWholeAndNoEventLoopSpinsAfterwards() throws Exception {
    int mib = knob("nodemesh.crossnode.mib", "NODEMESH_CROSSNODE_MIB", DEFAULT_MIB);
    int count = knob("nodemesh.crossnode.count", "NODEMESH_CROSSNODE_COUNT", DEFAULT_COUNT);
    long size = (long) mib << 20;
    for (String way : new String[] {"get", "post"}) {
      List<JsonNode> results = client(way, size, count, 1);
      assertEquals(count, results.size(), results.toString());
      for (JsonNode r : results) {
        assertTrue(r.get("error").isNull(), way + ": " + r);
        assertEquals(200, r.get("status").asInt(), way + ": " + r);
        assertEquals(size, r.get("bytes").asLong(), way + ": " + r);
        assertEquals(
            expectedSha256("t" + r.get("i").asInt(), size),
            r.get("sha256").asText(),
            way + ": " + r);
      }
    }
    IdleLoops.assertQuiet("after the transfers");
  }

  /**
   * The clients of issue 18, as it ran them: h2load with its large windows ({@code -w 22 -W 30}),
   * GET and POST, to the Service whose upstream speaks h2c and to the one whose upstream speaks
   * HTTP/1.1 (the L7 path then carries HTTP/1.1 inside the CONNECT stream). h2load checks the
   * status and the byte counts, not the content (the python client above checks the sha256).
   */
  @Test
  void h2loadWithLargeWindowsToBothUpstreamProtocols() throws Exception {
    int mib = knob("nodemesh.crossnode.mib", "NODEMESH_CROSSNODE_MIB", DEFAULT_MIB);
    int count = knob("nodemesh.crossnode.count", "NODEMESH_CROSSNODE_COUNT", DEFAULT_COUNT);
    long size = (long) mib << 20;
    Path data = tmp.resolve("post.bin");
    byte[] chunk = new byte[1 << 20];
    new java.util.Random(1).nextBytes(chunk);
    try (var out = Files.newOutputStream(data)) {
      for (int i = 0; i < mib; i++) {
        out.write(chunk);
      }
    }
    for (String vip : new String[] {VIP, VIP1}) {
      String get = h2load(count, "http://" + vip + "/blob/" + size);
      assertTrue(get.contains(count + " succeeded, 0 failed, 0 errored"), get);
      assertTrue(get.contains(count + " 2xx"), get);
      assertTrue(get.contains("(" + size * count + ") data"), get);
      String post = h2load(count, "-d", data.toString(), "http://" + vip + "/upload");
      assertTrue(post.contains(count + " succeeded, 0 failed, 0 errored"), post);
      assertTrue(post.contains(count + " 2xx"), post);
    }
    IdleLoops.assertQuiet("after the transfers");
  }

  /**
   * A response the upstream breaks off after its head (status 200, half the announced body, then
   * RST_STREAM): the client sees a broken response, node-1's access log flags it UR (with the
   * status it started with), its metrics count it as incomplete rather than 2xx, and no event loop
   * spins afterwards.
   */
  @Test
  void aResponseBrokenOffAfterItsHeadIsFlaggedAndCountedIncomplete() throws Exception {
    String out =
        podExec(
            "curl",
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download} %{exitcode}",
            "--max-time",
            "60",
            "http://" + VIP + "/short/1048576");
    String[] f = out.trim().split(" ");
    assertEquals("200", f[0], out);
    assertTrue(Long.parseLong(f[1]) < 2 * 1048576L, "curl got the whole body: " + out);
    assertTrue(!f[2].equals("0"), "curl saw a complete response: " + out);
    JsonNode line = awaitLogLine("/short/1048576");
    assertEquals(200, line.get("http_status").asInt(), line.toString());
    assertEquals("UR", line.get("response_flags").asText(), line.toString());
    assertTrue(
        cluster
            .node1
            .proxy()
            .dataPlane()
            .metrics()
            .scrape()
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_http_requests_total{")
                        && l.contains("response_code_class=\"incomplete\"")
                        && !l.endsWith(" 0.0")),
        "no incomplete request counted");
    IdleLoops.assertQuiet("after the transfers");
  }

  private JsonNode awaitLogLine(String path) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (Files.exists(accessLog)) {
        for (String l : Files.readAllLines(accessLog, StandardCharsets.UTF_8)) {
          if (l.startsWith("{")) {
            JsonNode n = JSON.readTree(l);
            if (path.equals(n.path("http_path").asText())) {
              return n;
            }
          }
        }
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no access-log line for " + path);
  }

  private String h2load(int n, String... args) throws Exception {
    List<String> cmd =
        new ArrayList<>(List.of("h2load", "-w", "22", "-W", "30", "-c", "1", "-m", "2", "-n"));
    cmd.add(Integer.toString(n));
    cmd.addAll(List.of(args));
    return podExec(cmd.toArray(String[]::new));
  }

  /** Runs {@code cmd} in the client pod (in eBPF mode, inside node-1's test cgroup); its stdout. */
  private String podExec(String... cmd) throws Exception {
    List<String> full = new ArrayList<>(inClientPod());
    full.addAll(List.of(cmd));
    Process p = start(full.toArray(String[]::new));
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(processLimitSeconds(), TimeUnit.SECONDS)) {
      throw new IOException("timed out: " + full + ": " + out);
    }
    return out;
  }

  private List<String> inClientPod() {
    if (mode == Kind.EBPF) {
      // A cgroup hook sees only sockets of processes in the cgroup: the client joins node-1's.
      return List.of(
          "sh",
          "-c",
          cgroups.get(0).joinCommand()
              + "ip netns exec "
              + cluster.node1.pod("client").name()
              + " \"$@\"",
          "sh");
    }
    return List.of("ip", "netns", "exec", cluster.node1.pod("client").name());
  }

  private List<JsonNode> client(String way, long size, int count, int streams) throws Exception {
    List<String> cmd = new ArrayList<>(inClientPod());
    cmd.addAll(
        List.of(
            "/usr/bin/python3",
            script.toString(),
            way,
            VIP,
            "80",
            Long.toString(size),
            Integer.toString(count),
            Integer.toString(streams)));
    Process p = start(cmd.toArray(String[]::new));
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(processLimitSeconds(), TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException("h2 client failed: " + out);
    }
    List<JsonNode> results = new ArrayList<>();
    for (String line : out.lines().toList()) {
      if (line.startsWith("{")) {
        results.add(JSON.readTree(line));
      }
    }
    return results;
  }

  private Process start(String... cmd) throws IOException {
    ProcessBuilder b = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT);
    Process p = b.start();
    processes.add(p);
    return p;
  }

  /**
   * How long one client process may run: 5 minutes, or 3 s per MiB it moves when that is more (a
   * hung transfer fails the test instead of holding CI).
   */
  static long processLimitSeconds() {
    long mib = knob("nodemesh.crossnode.mib", "NODEMESH_CROSSNODE_MIB", DEFAULT_MIB);
    long count = knob("nodemesh.crossnode.count", "NODEMESH_CROSSNODE_COUNT", DEFAULT_COUNT);
    return Math.max(300, 3 * mib * count);
  }

  static int knob(String property, String env, int fallback) {
    String v = System.getProperty(property);
    if (v == null || v.isBlank()) {
      v = System.getenv(env);
    }
    return v == null || v.isBlank() ? fallback : Integer.parseInt(v.trim());
  }

  /** The sha256 of the seeded stream h2bulk.py makes (block k = sha256(seed || k, 8 bytes BE)). */
  static String expectedSha256(String seed, long size) throws Exception {
    java.security.MessageDigest block = java.security.MessageDigest.getInstance("SHA-256");
    java.security.MessageDigest all = java.security.MessageDigest.getInstance("SHA-256");
    byte[] s = seed.getBytes(StandardCharsets.US_ASCII);
    long left = size;
    for (long k = 0; left > 0; k++) {
      block.update(s);
      block.update(java.nio.ByteBuffer.allocate(8).putLong(k).array());
      byte[] d = block.digest();
      int n = (int) Math.min(left, d.length);
      all.update(d, 0, n);
      left -= n;
    }
    return java.util.HexFormat.of().formatHex(all.digest());
  }

  private static String pod(String name, String ip, String app, String node) {
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: default
          uid: uid-%s
          labels:
            app: %s
        spec:
          nodeName: %s
          serviceAccountName: %s
          containers:
            - name: app
              ports:
                - name: h2c
                  containerPort: 8080
                - name: http
                  containerPort: 8081
        status:
          podIP: %s
        ---
        """
        .formatted(name, name, app, node, app, ip);
  }

  private static final String SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: %s
        namespace: default
      spec:
        clusterIP: %s
        selector:
          app: bulk
        ports:
          - name: web
            port: 80
            targetPort: %s
            appProtocol: %s
      """;

  private static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata:
        name: %s
        namespace: default
      spec:
        parentRefs:
          - group: ""
            kind: Service
            name: %s
            port: 80
        rules:
          - backendRefs:
              - {name: %s, port: 80}
      """;
}
