package dev.nodemesh.scripts.local;

import static dev.nodemesh.scripts.local.RootFixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.scripts.local.StateFile.Kind;
import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code local up --no-proxy} (pods attached by the bridge and host-local plugins only) and {@code
 * down} for real, in network namespaces of our own.
 */
@RootTest
class LocalModeRootTest {
  @TempDir Path runDir;
  private String prefix;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);

  @BeforeEach
  void prefix() {
    prefix = Names.randomPrefix();
  }

  @AfterEach
  void cleanUp() throws Exception {
    List<String> left = RootFixture.tearDown(runDir, prefix);
    assertEquals(List.of(), left, "left behind after down; output:\n" + log);
  }

  private LocalUp.Options options() {
    return new LocalUp.Options(
        ManifestTest.basic(),
        runDir,
        false,
        prefix,
        "10.96.0.0/16",
        "test",
        "127.0.0.1:15020",
        Duration.ofSeconds(30),
        List.of(),
        List.of());
  }

  private String inPod(String pod, String... argv) throws Exception {
    String[] cmd = new String[argv.length + 4];
    cmd[0] = "ip";
    cmd[1] = "netns";
    cmd[2] = "exec";
    cmd[3] = Names.podNetns(prefix, "default", pod);
    System.arraycopy(argv, 0, cmd, 4, argv.length);
    Exec.Result r = sh(cmd);
    assertEquals(0, r.exitCode(), String.join(" ", cmd) + ": " + r.output());
    return r.output();
  }

  @Test
  void podsReachEachOtherByIpAndNameAndDownRemovesEverything() throws Exception {
    new LocalUp(options(), out).run();
    StateFile.State state = StateFile.load(runDir).state();
    List<Resource> processes =
        state.resources().stream().filter(r -> r.kind() == Kind.process).toList();
    assertEquals(3, processes.size(), "one app per echo pod");

    String byIp = inPod("client", "curl", "-sS", "--max-time", "5", "http://10.213.0.12:8080/ip");
    assertTrue(byIp.startsWith("pod=echo-2 ns=default path=/ip from=10.213.0.10:"), byIp);
    String byName = inPod("client", "curl", "-sS", "--max-time", "5", "http://echo-2:8080/name");
    assertTrue(byName.startsWith("pod=echo-2 "), byName);
    assertTrue(inPod("client", "getent", "hosts", "echo-2").startsWith("10.213.0.12"));
    assertTrue(
        inPod("client", "getent", "hosts", "echo.default.svc.cluster.local")
            .startsWith("10.96.0.10"));
    String routes = inPod("client", "ip", "route");
    assertFalse(routes.contains("default"), "pods must have no default route: " + routes);
    assertTrue(routes.contains("10.96.0.0/16 via 10.213.0.1 dev eth0"), routes);
    // Without a proxy the chain is bridge + host-local only, with host-local's state in the run.
    // These pods name no node, so they are on the default node (--node-name, "test" here).
    assertTrue(Files.exists(runDir.resolve("cni/ipam/" + Names.network(prefix, "test"))));
    assertEquals("test", state.nodes().get(0).name());
    assertTrue(LocalStatus.run(runDir, out) >= state.resources().size());

    assertTrue(LocalDown.run(runDir, out), log.toString());
    RootFixture.assertNothingLeft(prefix);
    for (Resource p : processes) {
      assertFalse(ProcessHandle.of(p.pid()).map(ProcessHandle::isAlive).orElse(false), "" + p);
    }
    assertFalse(Files.exists(runDir.resolve(StateFile.NAME)));
    assertEquals(0, LocalStatus.run(runDir, out));
    assertTrue(LocalDown.run(runDir, out), "a second down is a no-op");
  }

  @Test
  void threeNodesAreJoinedByAnUnderlayBridgeAndRouteEachOthersPods(@TempDir Path config)
      throws Exception {
    StringBuilder yaml = new StringBuilder();
    for (int i = 1; i <= 3; i++) {
      yaml.append(
          """
          apiVersion: v1
          kind: Pod
          metadata: {name: p%d, namespace: default, labels: {app: p%d}}
          spec:
            nodeName: n%d
            containers: [{name: c, image: nodemesh/sample-app, ports: [{name: http, containerPort: 8080}]}]
          status: {podIP: 10.216.%d.10}
          ---
          """
              .formatted(i, i, i, i));
    }
    Files.writeString(config.resolve("pods.yaml"), yaml);
    LocalUp.Options o = options();
    new LocalUp(
            new LocalUp.Options(
                config,
                o.runDir(),
                false,
                o.prefix(),
                o.serviceCidr(),
                o.nodeName(),
                o.adminAddress(),
                o.waitTimeout(),
                List.of(),
                List.of()),
            out)
        .run();
    StateFile.State state = StateFile.load(runDir).state();
    assertEquals(List.of("n1", "n2", "n3"), state.nodes().stream().map(n -> n.name()).toList());
    assertTrue(Netns.exists(Names.underlayNetns(prefix)));
    // Every pod reaches the pods of both other nodes, across the underlay bridge.
    for (int from = 1; from <= 3; from++) {
      for (int to = 1; to <= 3; to++) {
        String body =
            inPod(
                "p" + from, "curl", "-sS", "--max-time", "5", "http://10.216." + to + ".10:8080/");
        assertTrue(body.startsWith("pod=p" + to + " "), body);
      }
    }
    String routes = inPod("p1", "ip", "route");
    assertTrue(routes.contains("10.216.0.0/22 via 10.216.1.1 dev eth0"), routes);
    assertFalse(routes.contains("default"), routes);

    assertTrue(LocalDown.run(runDir, out), log.toString());
    RootFixture.assertNothingLeft(prefix);
  }

  @Test
  void downCleansUpAfterUpDiedHalfWay() throws Exception {
    // Replays what up records and creates, then "dies" at the worst moments: a netns recorded but
    // never created, a process recorded as pending whose pid never reached the file, and a
    // process started without being recorded at all.
    StateFile s = StateFile.create(runDir, prefix, ManifestTest.basic(), true);
    String node = Names.nodeNetns(prefix, "node-1");
    s.add(Resource.netns(node));
    sh("ip", "netns", "add", node);
    s.add(Resource.link(Names.bridge(prefix, 0), node));
    Exec.ip(node, "link", "add", Names.bridge(prefix, 0), "type", "bridge");
    String pod = Names.podNetns(prefix, "default", "echo-1");
    s.add(Resource.netns(pod));
    sh("ip", "netns", "add", pod);
    // A veth as the bridge plugin leaves it, and a CNI attachment whose conflist never got
    // written: down skips its DEL and still removes everything.
    String veth = prefix + "v1";
    s.add(Resource.link(veth, node));
    Exec.ip(node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod);
    s.add(
        Resource.cni(
            pod, node, runDir.resolve("cni/never-written.conflist"), Map.of("IP", "10.213.0.11")));
    Path dir = Path.of("/etc/netns", pod);
    s.add(Resource.dir(dir));
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("hosts"), "127.0.0.1 localhost\n");
    Resource recorded =
        Daemons.start(s, "app:echo-1", pod, List.of("sleep", "300"), runDir.resolve("a.log"));
    Process unrecorded =
        new ProcessBuilder("ip", "netns", "exec", pod, "sleep", "300")
            .redirectErrorStream(true)
            .redirectOutput(runDir.resolve("b.log").toFile())
            .start();
    s.add(Resource.pendingProcess("app:echo-2", Names.podNetns(prefix, "default", "echo-2")));
    s.add(Resource.netns(Names.podNetns(prefix, "default", "echo-3")));

    assertTrue(Daemons.alive(recorded));
    assertFalse(RootFixture.leftovers(prefix).isEmpty());
    // A fresh reader, as `nodemesh local down` in a new process would be.
    assertTrue(LocalDown.run(runDir, out), log.toString());

    RootFixture.assertNothingLeft(prefix);
    assertFalse(Daemons.alive(recorded));
    assertTrue(unrecorded.waitFor(10, java.util.concurrent.TimeUnit.SECONDS));
    assertFalse(Files.exists(runDir.resolve(StateFile.NAME)));
  }
}
