package dev.nodemesh.proxy.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.metrics.PrometheusConventions;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import java.net.InetAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Rotation, retry and following the config, driven by a fake clock and a manual scheduler: no test
 * waits for real time.
 */
class CertificateManagerTest {
  private static final Duration LIFETIME = Duration.ofHours(1);
  private static final SpiffeId CHECKOUT = new SpiffeId("cluster.local", "shop", "checkout");
  private static final SpiffeId PAYMENTS = new SpiffeId("cluster.local", "shop", "payments");

  private final ManualTime time = new ManualTime(Instant.parse("2026-11-22T12:00:00Z"));
  private final ProxyMetrics metrics = new ProxyMetrics("node-1");
  private FakeCa ca;
  private CertificateManager manager;

  @BeforeEach
  void setUp() throws Exception {
    ca =
        new FakeCa(
            time,
            LIFETIME,
            Map.of(
                "shop/checkout-1",
                "checkout",
                "shop/checkout-2",
                "checkout",
                "shop/payments-1",
                "payments"));
    // random 0.5: renewals at exactly half the remaining lifetime, retries at the base backoff.
    manager =
        new CertificateManager(
            "node-1", "cluster.local", LIFETIME, ca, time, time, () -> 0.5, metrics.registry());
  }

  @Test
  void prefetchesOnlyThisNodesIdentitiesAndServesThemWithoutWaiting() throws Exception {
    manager.onSnapshot(
        snapshot(
            pod("checkout-1", "checkout", "node-1", "10.0.0.1"),
            pod("checkout-2", "checkout", "node-1", "10.0.0.2"),
            pod("payments-1", "payments", "node-2", "10.0.1.1")));
    time.runDue();

    assertEquals(1, ca.requests.size(), "one identity on node-1, asked once");
    CompletableFuture<WorkloadCertificate> c = manager.certificate(CHECKOUT).toCompletableFuture();
    assertTrue(c.isDone(), "held: answered at once, no hop");
    assertEquals(CHECKOUT, CertificateManager.uriSan(c.get().leaf()));
    assertEquals(List.of(ca.root()), manager.trustAnchors());

    CompletableFuture<WorkloadCertificate> other =
        manager.certificate(PAYMENTS).toCompletableFuture();
    time.runDue();
    ExecutionException e = assertThrows(ExecutionException.class, other::get);
    assertTrue(e.getCause().getMessage().contains("no pod on node node-1"), e.getMessage());
    assertEquals(1, ca.requests.size(), "nothing asked for another node's pod");
  }

  @Test
  void rotatesAtHalfLifeSeveralTimesWithANewKeyEachTimeAndNeverSendsAKey() throws Exception {
    manager.onSnapshot(snapshot(pod("checkout-1", "checkout", "node-1", "10.0.0.1")));
    time.runDue();
    List<WorkloadCertificate> seen = new ArrayList<>();
    seen.add(manager.certificate(CHECKOUT).toCompletableFuture().get());

    for (int i = 1; i <= 4; i++) {
      // Just before the renewal point nothing happens; just after, a new certificate is held.
      // Each certificate lives an hour and is renewed half an hour after it was issued.
      time.advance(LIFETIME.dividedBy(2).minusSeconds(1));
      assertEquals(i, ca.requests.size(), "renewal " + i + " not yet");
      WorkloadCertificate before = manager.certificate(CHECKOUT).toCompletableFuture().getNow(null);
      assertSame(seen.get(seen.size() - 1), before, "the held one serves until then");
      time.advance(Duration.ofSeconds(1));
      assertEquals(i + 1, ca.requests.size(), "renewal " + i);
      seen.add(manager.certificate(CHECKOUT).toCompletableFuture().get());
    }

    Set<Object> serials = new HashSet<>();
    Set<Object> keys = new HashSet<>();
    for (WorkloadCertificate c : seen) {
      serials.add(c.leaf().getSerialNumber());
      keys.add(c.key());
      assertEquals(c.leaf().getPublicKey(), c.chain().get(0).getPublicKey());
    }
    assertEquals(5, serials.size(), "each rotation is a new certificate");
    assertEquals(5, keys.size(), "each rotation has a new key pair");
    assertEquals(4.0, metrics.registry().get("nodemesh.certificate.rotations").counter().count());

    for (int i = 0; i < ca.requests.size(); i++) {
      CreateCertificateRequest r = ca.requests.get(i);
      assertFalse(r.getCsr().contains("PRIVATE KEY"), r.getCsr());
      assertEquals(
          Set.of(1, 2, 3),
          r.getAllFields().keySet().stream()
              .map(f -> f.getNumber())
              .collect(java.util.stream.Collectors.toSet()),
          "csr, workload, ttl only");
      assertTrue(r.getUnknownFields().asMap().isEmpty());
      assertEquals("checkout-1", r.getWorkload().getName());
      // The CSR holds the public half of the key the node kept; the private half is nowhere.
      if (i < seen.size()) {
        WorkloadCertificate c = seen.get(i);
        assertEquals(
            c.leaf().getPublicKey(),
            new JcaPKCS10CertificationRequest(Pem.csr(r.getCsr())).getPublicKey());
        String keyB64 = Base64.getEncoder().encodeToString(c.key().getEncoded());
        assertFalse(r.toString().contains(keyB64));
        assertFalse(contains(r.toByteArray(), c.key().getEncoded()));
      }
    }
  }

  @Test
  void aFailedRequestIsRetriedWithBackoffAndWaitersHearOfIt() throws Exception {
    ca.failNext = 2;
    manager.onSnapshot(snapshot(pod("checkout-1", "checkout", "node-1", "10.0.0.1")));
    CompletableFuture<WorkloadCertificate> first =
        manager.certificate(CHECKOUT).toCompletableFuture();
    time.runDue();
    assertTrue(first.isCompletedExceptionally(), "no certificate yet: the caller is told");
    assertEquals(1, ca.requests.size());

    time.advance(Duration.ofMillis(999));
    assertEquals(1, ca.requests.size(), "backoff: 1 s");
    time.advance(Duration.ofMillis(1));
    assertEquals(2, ca.requests.size(), "retry 1 (fails again)");
    time.advance(Duration.ofMillis(1599));
    assertEquals(2, ca.requests.size(), "backoff grows to 1.6 s");
    CompletableFuture<WorkloadCertificate> waiting =
        manager.certificate(CHECKOUT).toCompletableFuture();
    time.runDue();
    assertFalse(waiting.isDone(), "a caller during backoff waits for the retry");
    time.advance(Duration.ofMillis(1));
    assertEquals(3, ca.requests.size(), "retry 2 succeeds");
    assertTrue(waiting.isDone() && !waiting.isCompletedExceptionally());
    assertEquals(2.0, metrics.registry().get("nodemesh.certificate.failures").counter().count());

    // A failed renewal keeps the valid certificate serving, and the next retry replaces it.
    WorkloadCertificate held = waiting.get();
    ca.failNext = 1;
    time.advance(LIFETIME.dividedBy(2));
    assertEquals(4, ca.requests.size());
    assertSame(held, manager.certificate(CHECKOUT).toCompletableFuture().getNow(null));
    time.advance(Duration.ofSeconds(1));
    assertEquals(5, ca.requests.size());
    assertNotEquals(
        held.leaf().getSerialNumber(),
        manager.certificate(CHECKOUT).toCompletableFuture().get().leaf().getSerialNumber());
  }

  @Test
  void dropsIdentitiesNoPodHereHasAnyMore() throws Exception {
    manager.onSnapshot(snapshot(pod("checkout-1", "checkout", "node-1", "10.0.0.1")));
    time.runDue();
    assertEquals(1, manager.held().size());
    assertEquals(CHECKOUT, manager.held().get(0).id());

    manager.onSnapshot(snapshot(pod("checkout-1", "checkout", "node-2", "10.0.0.1")));
    time.runDue();
    assertEquals(List.of(), manager.held());
    assertEquals(0, time.pending(), "its renewal is cancelled");
    time.advance(LIFETIME);
    assertEquals(1, ca.requests.size());
  }

  @Test
  void expiryGaugeCountsDownAndMetricsFollowConventions() throws Exception {
    manager.onSnapshot(snapshot(pod("checkout-1", "checkout", "node-1", "10.0.0.1")));
    time.runDue();
    time.advance(Duration.ofMinutes(10));
    double expiry = metrics.registry().get("nodemesh.certificate.expiry").gauge().value();
    assertEquals(LIFETIME.minusMinutes(10).toSeconds(), expiry, 0.001);
    String scrape = metrics.scrape();
    assertTrue(scrape.contains("nodemesh_certificate_expiry_seconds{node=\"node-1\"}"), scrape);
    List<String> problems = new ArrayList<>(PrometheusConventions.nameProblems(scrape));
    problems.addAll(PrometheusConventions.labelProblems(scrape, "node-1"));
    assertEquals(List.of(), problems, scrape);
  }

  private static boolean contains(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  private static ConfigSnapshot snapshot(Workload... workloads) {
    return new ConfigSnapshot(1, List.of(workloads), List.of());
  }

  private static Workload pod(String name, String sa, String node, String ip) throws Exception {
    return new Workload(
        "uid-" + name,
        name,
        "shop",
        List.of(InetAddress.getByName(ip)),
        Map.of("app", name),
        sa,
        node,
        Map.of());
  }
}
