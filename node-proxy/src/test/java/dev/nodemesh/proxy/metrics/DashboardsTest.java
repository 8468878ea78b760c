package dev.nodemesh.proxy.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The shape of the Grafana dashboards in {@code deploy/grafana/}, without root or a Prometheus: the
 * datasource and node/namespace/workload variables, every panel and query bound to {@code
 * ${datasource}}, unique ids and uids, every query filtered by {@code $node}. Whether each query
 * returns data is {@code PrometheusDashboardsRootTest}'s job.
 */
class DashboardsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void everyDashboardHasTheVariablesAndDatasourceBinding() throws IOException {
    List<String> problems = new ArrayList<>();
    Set<String> uids = new HashSet<>();
    for (Path file : dashboards()) {
      JsonNode d = JSON.readTree(file.toFile());
      String name = file.getFileName().toString();
      if (!uids.add(d.path("uid").asText())) {
        problems.add(name + ": duplicate uid");
      }
      if (d.path("schemaVersion").asInt() < 39) {
        problems.add(name + ": schemaVersion below 39");
      }
      List<String> vars = new ArrayList<>();
      d.path("templating").path("list").forEach(v -> vars.add(v.path("name").asText()));
      // The control plane's dashboard selects control plane instances, not nodes.
      boolean control = name.equals("control-plane.json");
      List<String> expected =
          control
              ? List.of("datasource", "instance")
              : List.of("datasource", "node", "namespace", "workload");
      String filter = control ? "instance=~\"$instance\"" : "node=~\"$node\"";
      if (!vars.equals(expected)) {
        problems.add(name + ": variables " + vars);
      }
      Set<Integer> ids = new HashSet<>();
      for (JsonNode p : d.path("panels")) {
        String title = name + " \"" + p.path("title").asText() + "\"";
        if (!ids.add(p.path("id").asInt())) {
          problems.add(title + ": duplicate id");
        }
        if (!"${datasource}".equals(p.path("datasource").path("uid").asText())) {
          problems.add(title + ": not bound to ${datasource}");
        }
        if (p.path("targets").isEmpty()) {
          problems.add(title + ": no query");
        }
        for (JsonNode t : p.path("targets")) {
          String expr = t.path("expr").asText();
          if (!"${datasource}".equals(t.path("datasource").path("uid").asText())) {
            problems.add(title + ": query not bound to ${datasource}");
          }
          if (!expr.contains(filter)) {
            problems.add(title + ": ignores its variable (" + filter + "): " + expr);
          }
        }
      }
    }
    assertEquals(List.of(), problems);
  }

  private static List<Path> dashboards() throws IOException {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve("deploy/grafana"))) {
      p = p.getParent();
    }
    assertTrue(p != null, "deploy/grafana not found above the working directory");
    try (Stream<Path> files = Files.list(p.resolve("deploy/grafana"))) {
      List<Path> out = files.filter(f -> f.toString().endsWith(".json")).sorted().toList();
      assertEquals(5, out.size(), out.toString());
      return out;
    }
  }
}
