package dev.nodemesh.scripts.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.proxy.l7.HttpRouter;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The routing decision for {@code examples/l7} as the node proxy makes it, over the example's own
 * YAML and every value of the weighted draw: the canary rule splits exactly 90/10 between the
 * backend Services whatever their endpoint counts (web-v1 has two pods, web-v2 one, web itself
 * three), because the weight picks a backendRef and only then the balancer picks among that
 * Service's endpoints. {@code L7ExampleRootTest} checks the same split end to end.
 */
class L7ExampleRouteTest {
  private static final Path L7 = Path.of("../examples/l7").toAbsolutePath().normalize();
  private static ConfigSnapshot mesh;
  private static MeshService web;

  @BeforeAll
  static void load() throws Exception {
    mesh = ConfigLoader.load(L7);
    web = mesh.serviceByName(new NamespacedName("default", "web"));
  }

  /** Backend Service of each draw in {@code [0, bound)}, counted. */
  private static Map<String, Integer> everyDraw(String path) {
    Map<String, Integer> counts = new TreeMap<>();
    for (int r = 0; ; r++) {
      int value = r;
      int[] bound = new int[1];
      HttpRouter.Decision d =
          HttpRouter.route(
              mesh,
              "default",
              web,
              80,
              "GET",
              path,
              new DefaultHttpHeaders(),
              b -> {
                bound[0] = b;
                return value;
              });
      HttpRouter.ToBackend to = assertInstanceOf(HttpRouter.ToBackend.class, d, path);
      counts.merge(to.service().name(), 1, Integer::sum);
      if (r + 1 >= bound[0]) {
        return counts;
      }
    }
  }

  @Test
  void theCanaryRuleSplitsNinetyTenByBackendServiceNotByEndpoint() {
    // The endpoint counts that an endpoint-weighted pick would skew by.
    assertEquals(
        2, mesh.endpoints(mesh.serviceByName(new NamespacedName("default", "web-v1"))).size());
    assertEquals(
        1, mesh.endpoints(mesh.serviceByName(new NamespacedName("default", "web-v2"))).size());
    assertEquals(3, mesh.endpoints(web).size());
    assertEquals(Map.of("web-v1", 90, "web-v2", 10), everyDraw("/"));
    assertEquals(Map.of("web-v1", 90, "web-v2", 10), everyDraw("/admin/users"));
  }

  @Test
  void theFaultAndTheRateLimitRulesHaveOneBackendEach() {
    assertEquals(Map.of("web-v1", 1), everyDraw("/flaky"));
    assertEquals(Map.of("web-limited", 1), everyDraw("/limited"));
  }
}
