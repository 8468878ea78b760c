package dev.nodemesh.cni.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.TestJson;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runner against stub plugins (shell scripts that log what they were given): order, injected
 * fields, result chaining, reverse DEL, errors. No root needed.
 */
class CniRunnerTest {
  @TempDir Path tmp;
  private Path bin;
  private Path calls;
  private CniRunner runner;

  /**
   * A stub plugin: appends "name COMMAND CNI_CONTAINERID CNI_IFNAME CNI_ARGS" and its stdin to the
   * calls log; on ADD prints its stdin's prevResult (or a fresh result) with its name appended to
   * "dns.search", so chaining is visible.
   */
  private void stub(String name, boolean fail) throws Exception {
    String script =
        """
        #!/bin/sh
        in=$(cat)
        echo "%1$s $CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_ARGS $CNI_NETNS" >> %2$s
        echo "$in" > %3$s/%1$s-$CNI_COMMAND.stdin
        if [ "%4$s" = true ]; then
          echo '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"try later"}'
          exit 1
        fi
        if [ "$CNI_COMMAND" = ADD ]; then
          echo "$in" | python3 -c '
        import json, sys
        c = json.load(sys.stdin)
        r = c.get("prevResult") or {"cniVersion": c["cniVersion"], "ips": [{"address": "10.9.0.2/24"}], "dns": {"search": []}}
        r["dns"]["search"].append("%1$s")
        print(json.dumps(r))'
        fi
        """
            .formatted(name, calls, tmp, fail);
    Path p = bin.resolve(name);
    Files.writeString(p, script, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  @BeforeEach
  void setUp() throws Exception {
    bin = Files.createDirectories(tmp.resolve("bin"));
    calls = tmp.resolve("calls.log");
    stub("first", false);
    stub("second", false);
    stub("broken", true);
    runner =
        new CniRunner(
            List.of(tmp.resolve("empty"), bin),
            List.of(),
            tmp.resolve("cache"),
            Duration.ofSeconds(30));
  }

  private static ObjectNode conflist(String... types) throws Exception {
    StringBuilder plugins = new StringBuilder();
    for (String t : types) {
      plugins.append(plugins.length() == 0 ? "" : ",").append("{\"type\":\"" + t + "\",\"x\":1}");
    }
    return CniRunner.parseConflist(
        ("{\"cniVersion\":\"1.0.0\",\"name\":\"net1\",\"plugins\":[" + plugins + "]}")
            .getBytes(StandardCharsets.UTF_8));
  }

  private final CniRunner.Attachment att =
      new CniRunner.Attachment(
          "ctr1", Path.of("/var/run/netns/p"), "eth0", Map.of("K8S_POD_NAME", "p"));

  @Test
  void addChainsResultsInOrderAndDelRunsInReverse() throws Exception {
    ObjectNode list = conflist("first", "second");
    JsonNode r = runner.add(list, att);
    assertEquals("[\"first\",\"second\"]", r.path("dns").path("search").toString());
    JsonNode secondIn = TestJson.JSON.readTree(Files.readString(tmp.resolve("second-ADD.stdin")));
    assertEquals("net1", secondIn.path("name").asText());
    assertEquals("1.0.0", secondIn.path("cniVersion").asText());
    assertEquals(1, secondIn.path("x").asInt());
    assertEquals("[\"first\"]", secondIn.path("prevResult").path("dns").path("search").toString());
    assertFalse(
        TestJson.JSON.readTree(Files.readString(tmp.resolve("first-ADD.stdin"))).has("prevResult"));

    runner.check(list, att);
    runner.del(list, att);
    List<String> log = Files.readAllLines(calls);
    assertEquals(
        List.of(
            "first ADD ctr1 eth0 K8S_POD_NAME=p /var/run/netns/p",
            "second ADD ctr1 eth0 K8S_POD_NAME=p /var/run/netns/p",
            "first CHECK ctr1 eth0 K8S_POD_NAME=p /var/run/netns/p",
            "second CHECK ctr1 eth0 K8S_POD_NAME=p /var/run/netns/p",
            "second DEL ctr1 eth0 K8S_POD_NAME=p /var/run/netns/p",
            "first DEL ctr1 eth0 K8S_POD_NAME=p /var/run/netns/p"),
        log);
    // DEL carries the cached ADD result as prevResult.
    JsonNode delIn = TestJson.JSON.readTree(Files.readString(tmp.resolve("first-DEL.stdin")));
    assertEquals(r, delIn.path("prevResult"));
    assertTrue(Files.list(tmp.resolve("cache")).findAny().isEmpty());
  }

  @Test
  void aFailingPluginReportsItsCniError() throws Exception {
    CniRunException e =
        assertThrows(CniRunException.class, () -> runner.add(conflist("first", "broken"), att));
    assertEquals("broken", e.plugin());
    assertEquals(11, e.error().code());
    assertEquals("try later", e.error().details());
  }

  @Test
  void statusAsksNothingBefore110() throws Exception {
    runner.status(conflist("broken"));
    assertFalse(Files.exists(calls));
    ObjectNode v110 = conflist("first", "second");
    v110.put("cniVersion", "1.1.0");
    runner.status(v110);
    assertEquals(2, Files.readAllLines(calls).size());
  }

  @Test
  void delRunsEveryPluginEvenWhenOneFails() throws Exception {
    assertThrows(
        CniRunException.class, () -> runner.del(conflist("first", "broken", "second"), att));
    List<String> log = Files.readAllLines(calls);
    assertEquals(3, log.size(), log.toString());
    assertTrue(log.get(2).startsWith("first DEL"), log.toString());
  }

  @Test
  void missingPluginAndBadConflistsAreConfigErrors() throws Exception {
    assertEquals(
        7,
        assertThrows(
                dev.nodemesh.cni.spec.CniError.class, () -> runner.add(conflist("nosuch"), att))
            .code());
    assertThrows(
        dev.nodemesh.cni.spec.CniError.class,
        () -> CniRunner.parseConflist("{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}".getBytes()));
    assertThrows(
        dev.nodemesh.cni.spec.CniError.class,
        () ->
            CniRunner.parseConflist(
                "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"a\"}]}".getBytes()));
  }
}
