package dev.nodemesh.scripts.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** How {@link L7Tour} reads curl's per-request lines and a scrape (the root test runs the rest). */
class L7TourTest {
  @Test
  void aTallyCountsStatusesPodsAndVersionsAndTellsLocalAnswersApart() {
    L7Tour.Tally t =
        L7Tour.Tally.parse(
            "200 web-v1-a\n200 web-v1-a\r\n200 web-v2-a\n503 \n503\n503 web-v1-b\n000 \n"
                + "curl: (7) Failed to connect\n\n");
    assertEquals(7, t.total());
    assertEquals(3, t.status(200));
    assertEquals(3, t.status(503));
    assertEquals(2, t.local(503), "503s without x-served-by: the proxy's own");
    assertEquals(1, t.status(0));
    assertEquals(Map.of("web-v1-a", 2, "web-v2-a", 1), t.servedByPod());
    assertEquals(Map.of("v1", 2, "v2", 1), t.servedByVersion());
  }

  @Test
  void sumOfAddsEverySeriesOfOneMetricOnly() {
    String scrape =
        """
        # HELP nodemesh_policy_denials_total x
        nodemesh_policy_denials_total{reason="a",node="node-1"} 18.0
        nodemesh_policy_denials_total{reason="b",node="node-1"} 3.0
        nodemesh_policy_denials_totalx{reason="b"} 100.0
        nodemesh_other_total 7.0
        """;
    assertEquals(21.0, L7Tour.sumOf(scrape, "nodemesh_policy_denials_total"), 0.0);
  }
}
