package dev.nodemesh.cni.install;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.NetConf;
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
            NetConf.JSON.readTree(
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
    return NetConf.JSON.readTree(Files.readAllBytes(p));
  }

  private static List<String> types(JsonNode list) {
    List<String> out = new ArrayList<>();
    list.path("plugins").forEach(p -> out.add(p.path("type").asText()));
    return out;
  }

  @Test
  void bridgeConflistGetsNodemeshLastKeepingModeAndIsIdempotent() throws Exception {
    Path f = conf.resolve("10-bridge.conflist");
    Files.writeString(f, BRIDGE_CONFLIST);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
    assertEquals(InstallCni.Result.WRITTEN, install.insert());
    JsonNode after = json(f);
    assertEquals(List.of("bridge", "portmap", "nodemesh"), types(after));
    assertEquals(pluginConf, after.path("plugins").get(2));
    // Everything else is as it was.
    ObjectNode without = after.deepCopy();
    ((ArrayNode) without.get("plugins")).remove(2);
    assertEquals(NetConf.JSON.readTree(BRIDGE_CONFLIST), without);
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));

    byte[] once = Files.readAllBytes(f);
    assertEquals(InstallCni.Result.UNCHANGED, install.insert());
    assertEquals(new String(once), Files.readString(f));
    try (var s = Files.list(conf)) {
      assertEquals(1, s.count(), "no temp files left behind");
    }
  }

  @Test
  void aConfBecomesAConflist() throws Exception {
    Files.writeString(conf.resolve("10-mynet.conf"), BRIDGE_CONF);
    assertEquals(InstallCni.Result.WRITTEN, install.insert());
    assertFalse(Files.exists(conf.resolve("10-mynet.conf")));
    JsonNode list = json(conf.resolve("10-mynet.conflist"));
    assertEquals("0.4.0", list.path("cniVersion").asText());
    assertEquals("mynet", list.path("name").asText());
    assertEquals(List.of("bridge", "nodemesh"), types(list));
    assertFalse(list.path("plugins").get(0).has("name"));
    assertEquals("10.22.0.0/16", list.path("plugins").get(0).path("ipam").path("subnet").asText());
    assertEquals(conf.resolve("10-mynet.conflist"), InstallCni.primary(conf));
  }

  @Test
  void multiPluginConflistKeepsItsOrderWithNodemeshAfterTheLast() throws Exception {
    Path f = conf.resolve("05-calico.conflist");
    Files.writeString(f, MULTI_CONFLIST);
    Files.writeString(conf.resolve("99-other.conflist"), BRIDGE_CONFLIST);
    install.insert();
    assertEquals(List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"), types(json(f)));
    assertEquals(List.of("bridge", "portmap"), types(json(conf.resolve("99-other.conflist"))));
  }

  @Test
  void primaryIsTheLexicallyFirstConfigFile() throws Exception {
    Files.writeString(conf.resolve("20-b.conflist"), BRIDGE_CONFLIST);
    Files.writeString(conf.resolve("10-a.json"), BRIDGE_CONFLIST);
    Files.writeString(conf.resolve("00-ignored.txt"), "x");
    Files.writeString(conf.resolve(".00-a.conflist.tmp"), "x");
    assertEquals(conf.resolve("10-a.json"), InstallCni.primary(conf));
    assertEquals(null, InstallCni.primary(tmp.resolve("missing")));
  }

  @Test
  void aStaleOrMisplacedNodemeshEntryIsReplaced() throws Exception {
    Path f = conf.resolve("10.conflist");
    Files.writeString(
        f,
        BRIDGE_CONFLIST.replace(
            "{\"type\": \"portmap\"",
            "{\"type\": \"nodemesh\", \"old\": 1}, {\"type\": \"portmap\""));
    install.insert();
    JsonNode after = json(f);
    assertEquals(List.of("bridge", "portmap", "nodemesh"), types(after));
    assertEquals(pluginConf, after.path("plugins").get(2));
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
    }
  }

  @Test
  void watchReinsertsAfterThePrimaryCniRewritesItsFile() throws Exception {
    Path f = conf.resolve("10-bridge.conflist");
    Files.writeString(f, BRIDGE_CONFLIST);
    Thread watcher =
        new Thread(
            () -> {
              try {
                install.watch(Duration.ofMillis(200));
              } catch (Exception e) {
                log.add("watch failed: " + e);
              }
            });
    watcher.start();
    try {
      awaitTypes(f, List.of("bridge", "portmap", "nodemesh"));
      assertTrue(Files.exists(bin.resolve("nodemesh")), "binary installed by the watcher");
      // The primary CNI rewrites its config (rename over, as most do), dropping nodemesh.
      Path t = tmp.resolve("rewrite");
      Files.writeString(t, BRIDGE_CONFLIST);
      Files.move(t, f, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      awaitTypes(f, List.of("bridge", "portmap", "nodemesh"));
      // ...and in place.
      Files.writeString(f, MULTI_CONFLIST);
      awaitTypes(f, List.of("ptp", "tuning", "portmap", "bandwidth", "nodemesh"));
    } finally {
      watcher.interrupt();
      watcher.join(10_000);
    }
    assertFalse(watcher.isAlive());
    assertFalse(log.stream().anyMatch(l -> l.startsWith("watch failed")), log.toString());
  }

  private void awaitTypes(Path f, List<String> want) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    List<String> got = List.of();
    while (System.nanoTime() < deadline) {
      try {
        got = types(json(f));
        if (got.equals(want)) {
          return;
        }
      } catch (Exception e) {
        // Mid-rewrite: try again.
      }
      Thread.sleep(50);
    }
    assertEquals(want, got);
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
    install.uninstall();
    assertEquals(NetConf.JSON.readTree(BRIDGE_CONFLIST), json(f));
    assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    try (var s = Files.list(bin)) {
      assertEquals(List.of(), s.toList());
    }
    install.uninstall(); // idempotent
  }
}
