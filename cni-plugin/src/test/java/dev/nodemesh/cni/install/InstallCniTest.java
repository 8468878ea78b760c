package dev.nodemesh.cni.install;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.TestJson;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** install-cni against sample configs in temp dirs: never the machine's /etc/cni or /opt/cni. */
class InstallCniTest {
  static final String BRIDGE_CONFLIST =
      """
      {"cniVersion": "1.0.0", "name": "cbr0", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": true}}]}
      """;
  static final String BRIDGE_CONF =
      """
      {"cniVersion": "0.4.0", "name": "mynet", "type": "bridge", "bridge": "cni0",
       "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"}}
      """;
  static final String MULTI_CONFLIST =
      """
      {"cniVersion": "0.3.1", "name": "k8s-pod-network", "plugins": [
        {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"}},
        {"type": "tuning", "sysctl": {"net.core.somaxconn": "500"}},
        {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
        {"type": "bandwidth", "capabilities": {"bandwidth": true}}]}
      """;

  @TempDir Path tmp;
  private Path conf;
  private Path bin;
  private final List<String> log = new CopyOnWriteArrayList<>();
  private InstallCni install;
  private ObjectNode pluginConf;

  @BeforeEach
  void setUp() throws Exception {
    conf = Files.createDirectories(tmp.resolve("net.d"));
    bin = Files.createDirectories(tmp.resolve("bin"));
    Path src = Files.createDirectories(tmp.resolve("src/lib"));
    Files.writeString(src.resolve("a.jar"), "jar");
    Files.writeString(tmp.resolve("src/nodemesh-cni"), "#!/bin/sh\n");
    pluginConf =
        (ObjectNode)
            TestJson.JSON.readTree(
                "{\"type\": \"nodemesh\", \"agentSocket\": \"/var/run/nodemesh/agent.sock\"}");
    install =
        new InstallCni(
            new InstallCni.Settings(
                conf,
                bin,
                tmp.resolve("src/nodemesh-cni"),
                src,
                pluginConf,
                Path.of("/usr/bin/java")),
            log::add);
  }

  private JsonNode json(Path p) throws Exception {
    return TestJson.JSON.readTree(Files.readAllBytes(p));
  }

  private static List<String> types(JsonNode list) {
    List<String> out = new ArrayList<>();
    list.path("plugins").forEach(p -> out.add(p.path("type").asText()));
    return out;
  }

  /** Our own config must be what the runtime picks: the primary's plugins, then nodemesh. */
  private void assertOwnChains(Path primary, List<String> wantTypes) throws Exception {
    Path own = InstallCni.ownPath(primary);
    assertEquals(own, InstallCni.runtimePick(conf), "the runtime picks our config");
    assertEquals(primary, InstallCni.primary(conf));
    JsonNode list = json(own);
    assertEquals(wantTypes, types(list));
    assertEquals(pluginConf, list.path("plugins").get(wantTypes.size() - 1));
  }

  private List<String> confDirFiles() throws Exception {
    try (var s = Files.list(conf)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void ownConflistChainsThePrimaryLeavingItUntouchedAndIsIdempotent() throws Exception {
    Path f = conf.resolve("10-bridge.conflist");
    Files.writeString(f, BRIDGE_CONFLIST);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
    assertEquals(InstallCni.Result.WRITTEN, install.insert());
    assertEquals(BRIDGE_CONFLIST, Files.readString(f), "the primary's file is never written");
    Path own = conf.resolve("10-bridge-nodemesh.conflist");
    assertEquals(own, InstallCni.ownPath(f));
    assertOwnChains(f, List.of("bridge", "portmap", "nodemesh"));
    // Everything else is the primary's.
    ObjectNode without = json(own).deepCopy();
    ((ArrayNode) without.get("plugins")).remove(2);
    assertEquals(TestJson.JSON.readTree(BRIDGE_CONFLIST), without);
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(own)));

    byte[] once = Files.readAllBytes(own);
    assertEquals(InstallCni.Result.UNCHANGED, install.insert());
    assertEquals(new String(once), Files.readString(own));
    assertEquals(List.of("10-bridge-nodemesh.conflist", "10-bridge.conflist"), confDirFiles());
  }

  @Test
  void aConfPrimaryIsChainedAsAConflistOfItsOwnNetwork() throws Exception {
    Path f = conf.resolve("10-mynet.conf");
    Files.writeString(f, BRIDGE_CONF);
    assertEquals(InstallCni.Result.WRITTEN, install.insert());
    assertEquals(BRIDGE_CONF, Files.readString(f));
    assertOwnChains(f, List.of("bridge", "nodemesh"));
    JsonNode list = json(conf.resolve("10-mynet-nodemesh.conflist"));
    assertEquals("0.4.0", list.path("cniVersion").asText());
    assertEquals("mynet", list.path("name").asText(), "the same network, for the runtime's cache");
    assertFalse(list.path("plugins").get(0).has("name"));
    assertEquals("10.22.0.0/16", list.path("plugins").get(0).path("ipam").path("subnet").asText());
  }

  @Test
  void multiPluginConflistKeepsItsOrderWithNodemeshAfterTheLast() throws Exception {
    Path f = conf.resolve("05-calico.conflist");
    Files.writeString(f, MULTI_CONFLIST);
    Files.writeString(conf.resolve("99-other.conflist"), BRIDGE_CONFLIST);
    install.insert();
    assertOwnChains(f, List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"));
    assertEquals(BRIDGE_CONFLIST, Files.readString(conf.resolve("99-other.conflist")));
  }

  @Test
  void primaryIsTheLexicallyFirstConfigFileThatIsNotOurs() throws Exception {
    Files.writeString(conf.resolve("20-b.conflist"), BRIDGE_CONFLIST);
    Files.writeString(conf.resolve("10-a.json"), BRIDGE_CONFLIST);
    Files.writeString(conf.resolve("00-ignored.txt"), "x");
    Files.writeString(conf.resolve(".00-a.conflist.tmp"), "x");
    assertEquals(conf.resolve("10-a.json"), InstallCni.primary(conf));
    Files.writeString(conf.resolve("10-a-nodemesh.conflist"), BRIDGE_CONFLIST);
    assertEquals(conf.resolve("10-a.json"), InstallCni.primary(conf));
    assertEquals(conf.resolve("10-a-nodemesh.conflist"), InstallCni.runtimePick(conf));
    assertEquals(null, InstallCni.primary(tmp.resolve("missing")));
    // Our name sorts right before the primary's whatever its extension or name.
    for (String n : List.of("a.conf", "05-cilium.conflist", "x.json", "-.conf", "99.conf")) {
      String own = InstallCni.ownPath(conf.resolve(n)).getFileName().toString();
      assertTrue(own.compareTo(n) < 0, own + " before " + n);
    }
  }

  @Test
  void aNodemeshEntryAnEarlierInPlaceInstallLeftIsNotDuplicated() throws Exception {
    Path f = conf.resolve("10.conflist");
    String legacy =
        BRIDGE_CONFLIST.replace(
            "{\"type\": \"portmap\"",
            "{\"type\": \"nodemesh\", \"old\": 1}, {\"type\": \"portmap\"");
    Files.writeString(f, legacy);
    install.insert();
    assertOwnChains(f, List.of("bridge", "portmap", "nodemesh"));
    assertEquals(legacy, Files.readString(f));
    install.uninstall();
    assertEquals(List.of("bridge", "portmap"), types(json(f)), "uninstall cleans the old entry");
  }

  @Test
  void refusesConfigsItDoesNotUnderstandAndLeavesThemAlone() throws Exception {
    for (String bad :
        List.of(
            "{not json",
            "[1]",
            "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": {}}",
            "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": [{\"bridge\": \"x\"}]}",
            "{\"cniVersion\": \"0.2.0\", \"name\": \"n\", \"plugins\": [{\"type\": \"x\"}]}",
            "{\"cniVersion\": \"1.0.0\", \"plugins\": [{\"type\": \"x\"}]}")) {
      Path f = conf.resolve("10.conflist");
      Files.writeString(f, bad);
      ConfListEdit.Refused e = assertThrows(ConfListEdit.Refused.class, install::insert, bad);
      assertFalse(e.getMessage().isEmpty());
      assertEquals(bad, Files.readString(f));
      assertEquals(List.of("10.conflist"), confDirFiles());
    }
  }

  /**
   * Every shape in which a primary CNI regenerates its config, one after another with the real
   * watch running: after each, the file the runtime picks chains nodemesh after the plugins of the
   * primary's current file; uninstall then leaves the primary's files byte for byte as its CNI
   * wrote them. Each step waits for a condition, bounded; the watch's poll is long (60 s), so the
   * steps are driven by inotify events, not by the poll.
   */
  @Test
  void watchKeepsTheRuntimesPickChainedThroughEveryShapeOfRewrite() throws Exception {
    Thread watcher = startWatch(Duration.ofSeconds(60));
    try {
      // Nothing yet: nothing of ours either (a node without a primary must not look ready).
      Path cilium = conf.resolve("05-cilium.conflist");
      write(cilium, MULTI_CONFLIST);
      awaitOwn(cilium, List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"));
      assertTrue(Files.exists(bin.resolve("nodemesh")), "binary installed by the watcher");

      // Rewritten in place and by rename over, with other content.
      Files.writeString(cilium, BRIDGE_CONFLIST);
      awaitOwn(cilium, List.of("bridge", "portmap", "nodemesh"));
      write(cilium, MULTI_CONFLIST);
      awaitOwn(cilium, List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"));

      // A .conf appearing beside the .conflist (Cilium writing its .conf at start): it sorts
      // first, so it is the primary now.
      Path ciliumConf = conf.resolve("05-cilium.conf");
      write(ciliumConf, BRIDGE_CONF);
      awaitOwn(ciliumConf, List.of("bridge", "nodemesh"));
      Files.delete(ciliumConf);
      awaitOwn(cilium, List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"));

      // A rename: ours follows under the new name, the old one of ours is gone.
      Path renamed = conf.resolve("10-calico.conflist");
      Files.move(cilium, renamed);
      awaitOwn(renamed, List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"));
      assertFalse(Files.exists(conf.resolve("05-cilium-nodemesh.conflist")));

      // A new higher-priority file (Multus installing itself in front).
      Path multus = conf.resolve("00-multus.conf");
      write(multus, BRIDGE_CONF.replace("mynet", "multus-cni-network"));
      awaitOwn(multus, List.of("bridge", "nodemesh"));
      assertFalse(Files.exists(conf.resolve("10-calico-nodemesh.conflist")));

      // Someone deletes ours (Cilium's exclusive mode moves foreign configs away).
      Files.delete(InstallCni.ownPath(multus));
      awaitOwn(multus, List.of("bridge", "nodemesh"));

      // Every primary gone: ours goes too.
      Files.delete(multus);
      Files.delete(renamed);
      await(() -> confDirFiles().isEmpty(), "no config left when there is no primary");

      // And back, for uninstall.
      write(multus, BRIDGE_CONF.replace("mynet", "multus-cni-network"));
      write(renamed, MULTI_CONFLIST);
      awaitOwn(multus, List.of("bridge", "nodemesh"));
    } finally {
      watcher.interrupt();
      watcher.join(10_000);
    }
    assertFalse(watcher.isAlive());
    assertFalse(log.stream().anyMatch(l -> l.startsWith("watch failed")), log.toString());
    install.uninstall();
    assertEquals(List.of("00-multus.conf", "10-calico.conflist"), confDirFiles());
    assertEquals(
        BRIDGE_CONF.replace("mynet", "multus-cni-network"),
        Files.readString(conf.resolve("00-multus.conf")));
    assertEquals(MULTI_CONFLIST, Files.readString(conf.resolve("10-calico.conflist")));
  }

  @Test
  void watchFollowsARewriteOfAConfThatAnEarlierInstallHadNotTouched() throws Exception {
    // The case that used to be refused ("would become ... which already exists"): our file and a
    // freshly written primary .conf side by side.
    Path f = conf.resolve("05-cilium.conf");
    Files.writeString(f, BRIDGE_CONF);
    Thread watcher = startWatch(Duration.ofSeconds(60));
    try {
      awaitOwn(f, List.of("bridge", "nodemesh"));
      write(f, BRIDGE_CONF.replace("10.22.0.0/16", "10.23.0.0/16"));
      await(
          () ->
              json(InstallCni.ownPath(f))
                  .path("plugins")
                  .get(0)
                  .path("ipam")
                  .path("subnet")
                  .asText()
                  .equals("10.23.0.0/16"),
          "ours follows the primary's new content");
    } finally {
      watcher.interrupt();
      watcher.join(10_000);
    }
    assertFalse(log.stream().anyMatch(l -> l.contains("refusing")), log.toString());
  }

  private Thread startWatch(Duration poll) {
    Thread watcher =
        new Thread(
            () -> {
              try {
                install.watch(poll);
              } catch (Exception e) {
                log.add("watch failed: " + e);
              }
            },
            "install-cni-watch");
    watcher.start();
    return watcher;
  }

  /** Writes as most CNI agents do: a temp file renamed over the target. */
  private void write(Path target, String content) throws Exception {
    Path t = tmp.resolve("rewrite");
    Files.writeString(t, content);
    Files.move(t, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private void awaitOwn(Path primary, List<String> wantTypes) throws Exception {
    await(
        () -> {
          try {
            assertOwnChains(primary, wantTypes);
            // Nothing of ours but the one file.
            return confDirFiles().stream().filter(n -> n.endsWith(InstallCni.OWN_SUFFIX)).count()
                == 1;
          } catch (AssertionError | java.io.IOException e) {
            return false;
          }
        },
        "the runtime's pick chains " + primary + " + nodemesh");
    assertOwnChains(primary, wantTypes);
  }

  interface Condition {
    boolean holds() throws Exception;
  }

  private void await(Condition c, String what) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (System.nanoTime() < deadline) {
      if (c.holds()) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError(what + " within 20 s; dir " + confDirFiles() + "; log " + log);
  }

  @Test
  void uninstallRemovesNodemeshAndTheBinaries() throws Exception {
    Path f = conf.resolve("10-bridge.conflist");
    Files.writeString(f, BRIDGE_CONFLIST);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r-----"));
    install.installBinaries();
    install.installBinaries(); // again: replaces the old copy
    assertTrue(Files.isExecutable(bin.resolve("nodemesh")));
    assertTrue(Files.exists(bin.resolve("nodemesh-lib/a.jar")));
    assertEquals(
        Path.of("/usr/bin/java"), Files.readSymbolicLink(bin.resolve("nodemesh-lib/java")));
    install.insert();
    assertTrue(Files.exists(conf.resolve("10-bridge-nodemesh.conflist")));
    install.uninstall();
    assertEquals(BRIDGE_CONFLIST, Files.readString(f));
    assertEquals(List.of("10-bridge.conflist"), confDirFiles());
    assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    try (var s = Files.list(bin)) {
      assertEquals(List.of(), s.toList());
    }
    install.uninstall(); // idempotent
  }
}
