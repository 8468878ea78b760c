package dev.nodemesh.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.metrics.PrometheusConventions;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane's scrape (xDS, store, push and CA meters, with the CA on) follows the same
 * Prometheus conventions as the proxy's: snake_case, units in names, {@code _total} on counters,
 * only the labels in {@link ControlMetrics#LABELS}, none address-like; and every meter name written
 * in the module's sources is in it, so a new meter cannot skip this check.
 */
class ControlMetricNamingTest {
  @TempDir Path dir;

  @Test
  void everyControlPlaneMeterFollowsTheConventions() throws Exception {
    Path config = Files.createDirectory(dir.resolve("config"));
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")),
            CaSettings.of("cluster.local", Duration.ofHours(1)),
            Clock.systemUTC());
    BootstrapTokens.generate(dir.resolve("tokens"), List.of("node-1"));
    try (ControlPlane cp =
        ControlPlane.start(
            new LocalSource(config, 50),
            new InetSocketAddress("127.0.0.1", 0),
            null,
            Duration.ofMillis(20),
            new CaOptions(ca, BootstrapTokens.load(dir.resolve("tokens")), List.of("127.0.0.1")))) {
      String scrape = cp.registry().scrape();
      List<String> problems = new ArrayList<>(PrometheusConventions.nameProblems(scrape));
      problems.addAll(PrometheusConventions.labelProblems(scrape, ControlMetrics.LABELS, null));
      assertEquals(List.of(), problems, scrape);
      Set<String> names =
          PrometheusConventions.meterNamesIn(PrometheusConventions.mainSources("control"));
      assertTrue(names.contains("nodemesh.ca.certificates.issued"), names.toString());
      assertTrue(names.size() >= 13, names.toString());
      assertEquals(List.of(), PrometheusConventions.missingFamilies(scrape, names), scrape);
      // The check can fail: a label outside the documented set is reported.
      assertEquals(
          List.of("nodemesh_xds_pushes_total: undocumented label type"),
          PrometheusConventions.labelProblems(
              "nodemesh_xds_pushes_total{type=\"workload\"} 1.0\n", List.of("le"), null));
    }
  }
}
