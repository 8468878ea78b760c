package dev.nodemesh.control.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.enrolment.EnrolmentRegistry;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.VersionedResource;
import dev.nodemesh.model.capture.CaptureScope;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Capture follows enrolment on a cluster, against fabric8's mock API server in CRUD mode: pods
 * running before the install match the scope but are not captured until their node reports them; a
 * report writes the {@value KubernetesSource#ENROLLED_ANNOTATION} annotation, which a restarted
 * control plane (a new source, an empty registry) reads back; a report that no longer lists a pod
 * removes it; a node cannot mark another node's pod.
 */
class KubernetesEnrolmentTest {
  private MockApiServer api;
  private KubernetesClient client;
  private final ExecutorService executor = Executors.newSingleThreadExecutor();
  private ResourceStore store = new ResourceStore(System::nanoTime, () -> {});
  private @Nullable KubernetesSource source;

  @BeforeEach
  void startServer() {
    api = MockApiServer.start();
    client = api.client();
  }

  @AfterEach
  void stop() throws Exception {
    if (source != null) {
      source.close();
    }
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
    api.close();
  }

  private static Pod pod(String name, String ip, String node) {
    return MockApiServer.pod(name, ip, true, Map.of("app", name), node);
  }

  private KubernetesSource start(EnrolmentRegistry registry) throws Exception {
    KubernetesSource s = new KubernetesSource(client, 0, null, CaptureScope.DEFAULT, registry);
    source = s;
    s.start(store, executor);
    await("initial sync", s::ready);
    return s;
  }

  /** The workload's tunnel as the store holds it; null when there is no such workload. */
  private @Nullable TunnelProtocol tunnel(String name) throws Exception {
    CompletableFuture<@Nullable TunnelProtocol> f = new CompletableFuture<>();
    executor.execute(
        () -> {
          VersionedResource r = store.snapshot().of(ResourceType.WORKLOAD).get("default/" + name);
          f.complete(r == null ? null : ((Workload) r.message()).getTunnel());
        });
    return f.get(5, TimeUnit.SECONDS);
  }

  private @Nullable String annotation(String name) {
    Pod p = client.pods().inNamespace("default").withName(name).get();
    Map<String, String> a = p.getMetadata().getAnnotations();
    return a == null ? null : a.get(KubernetesSource.ENROLLED_ANNOTATION);
  }

  private static void await(String what, BooleanSupplier ok) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!ok.getAsBoolean()) {
      assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
      Thread.sleep(20);
    }
  }

  private boolean tunnelIs(String name, TunnelProtocol t) {
    try {
      return t == tunnel(name);
    } catch (Exception e) {
      return false;
    }
  }

  @Test
  void aPodIsCapturedOnlyOnceItsNodeReportsItAndTheAnnotationOutlivesTheControlPlane()
      throws Exception {
    // The mock server gives each pod a uid of its own, as the API server does.
    String old =
        client
            .pods()
            .inNamespace("default")
            .resource(pod("old", "10.1.0.5", "node-1"))
            .create()
            .getMetadata()
            .getUid();
    String other =
        client
            .pods()
            .inNamespace("default")
            .resource(pod("other", "10.1.1.5", "node-2"))
            .create()
            .getMetadata()
            .getUid();
    EnrolmentRegistry registry = new EnrolmentRegistry();
    start(registry);
    await("workloads", () -> tunnelIs("old", TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED));
    assertEquals(TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED, tunnel("other"));

    // node-1 reports its pod, and node-2's too: only its own is marked.
    assertTrue(registry.report("node-1", Set.of(old, other)));
    await("annotation written", () -> "node-1".equals(annotation("old")));
    await("old captured", () -> tunnelIs("old", TunnelProtocol.HBONE));
    assertEquals("node-1", annotation("old"));
    assertNull(annotation("other"), "a node cannot mark another node's pod");
    assertEquals(TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED, tunnel("other"));

    // A control-plane restart: a new source and an empty registry read the annotation back.
    KubernetesSource first = source;
    first.close();
    source = null;
    EnrolmentRegistry fresh = new EnrolmentRegistry();
    store = new ResourceStore(System::nanoTime, () -> {});
    start(fresh);
    await("old derived again", () -> tunnelIs("old", TunnelProtocol.HBONE));

    // The node's proxy no longer lists it (CNI DEL): the annotation goes, and capture with it.
    assertTrue(fresh.report("node-1", Set.of()));
    await("old uncaptured", () -> tunnelIs("old", TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED));
    assertNull(annotation("old"));
    assertFalse(fresh.report("node-1", Set.of()), "the same report changes nothing");

    // Deleted: the workload goes.
    client.pods().inNamespace("default").withName("old").delete();
    await("old gone", () -> tunnelIsNull("old"));
  }

  private boolean tunnelIsNull(String name) {
    try {
      return tunnel(name) == null;
    } catch (Exception e) {
      return false;
    }
  }
}
