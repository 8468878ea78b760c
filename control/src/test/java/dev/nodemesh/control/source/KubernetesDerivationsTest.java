package dev.nodemesh.control.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.Workload;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSliceBuilder;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class KubernetesDerivationsTest {
  private static Pod pod(String ip, String phase, boolean hostNetwork, String ready) {
    return new PodBuilder()
        .withNewMetadata()
        .withName("p")
        .withNamespace("default")
        .endMetadata()
        .withNewSpec()
        .withHostNetwork(hostNetwork)
        .endSpec()
        .withNewStatus()
        .withPodIP(ip)
        .withPhase(phase)
        .addNewCondition()
        .withType("Ready")
        .withStatus(ready)
        .endCondition()
        .endStatus()
        .build();
  }

  @Test
  void aPodIsAWorkloadOnlyWithAnIpWhileRunningOffTheHostNetwork() {
    assertTrue(KubernetesDerivations.isWorkload(pod("10.0.0.1", "Running", false, "True")));
    assertTrue(KubernetesDerivations.isWorkload(pod("10.0.0.1", "Pending", false, "False")));
    assertFalse(KubernetesDerivations.isWorkload(pod("", "Pending", false, "False")));
    assertFalse(KubernetesDerivations.isWorkload(pod(null, "Pending", false, "False")));
    assertFalse(KubernetesDerivations.isWorkload(pod("10.0.0.1", "Succeeded", false, "False")));
    assertFalse(KubernetesDerivations.isWorkload(pod("10.0.0.1", "Failed", false, "False")));
    assertFalse(KubernetesDerivations.isWorkload(pod("10.0.0.1", "Running", true, "True")));
    assertFalse(KubernetesDerivations.isWorkload(new PodBuilder().build()));
  }

  @Test
  void readinessIsTheReadyCondition() {
    assertTrue(KubernetesDerivations.ready(pod("10.0.0.1", "Running", false, "True")));
    assertFalse(KubernetesDerivations.ready(pod("10.0.0.1", "Running", false, "False")));
    assertFalse(KubernetesDerivations.ready(new PodBuilder().withNewStatus().endStatus().build()));
  }

  private static Node node(Map<String, String> labels) {
    return new NodeBuilder()
        .withNewMetadata()
        .withName("n")
        .withLabels(labels)
        .endMetadata()
        .build();
  }

  @Test
  void aNodesZoneIsTheTopologyLabelElseTheLegacyOne() {
    assertEquals(
        "a",
        KubernetesDerivations.zoneOf(
            node(Map.of(Workload.ZONE_LABEL, "a", KubernetesDerivations.LEGACY_ZONE_LABEL, "b"))));
    assertEquals(
        "b",
        KubernetesDerivations.zoneOf(node(Map.of(KubernetesDerivations.LEGACY_ZONE_LABEL, "b"))));
    assertEquals("", KubernetesDerivations.zoneOf(node(Map.of())));
    assertEquals(
        "",
        KubernetesDerivations.zoneOf(new NodeBuilder().withNewMetadata().endMetadata().build()));
  }

  @Test
  void theNodesZoneWinsOverThePodsOwnLabel() {
    Workload w =
        new Workload(
            "uid",
            "p",
            "default",
            List.of(InetAddress.getLoopbackAddress()),
            Map.of(),
            "default",
            "n",
            Map.of(),
            "pod-zone");
    assertEquals("node-zone", KubernetesDerivations.inZone(w, "node-zone").zone());
    assertEquals("uid", KubernetesDerivations.inZone(w, "node-zone").uid());
    assertSame(w, KubernetesDerivations.inZone(w, ""), "the node says nothing: the pod's label");
    assertSame(w, KubernetesDerivations.inZone(w, "pod-zone"));
  }

  private static EndpointSlice slice(String ns, String service, String uid, Boolean ready) {
    var b = new EndpointSliceBuilder().withNewMetadata().withNamespace(ns).withName(service + "-x");
    if (service != null) {
      b = b.withLabels(Map.of(KubernetesDerivations.SERVICE_NAME_LABEL, service));
    }
    return b.endMetadata()
        .addNewEndpoint()
        .withNewTargetRef()
        .withKind("Pod")
        .withUid(uid)
        .endTargetRef()
        .withNewConditions()
        .withReady(ready)
        .endConditions()
        .endEndpoint()
        .build();
  }

  @Test
  void theReadyPodsOfAServiceComeFromItsOwnSlices() {
    List<EndpointSlice> slices =
        List.of(
            slice("default", "db", "u1", true),
            slice("default", "db", "u2", null),
            slice("default", "db", "u3", false),
            slice("other", "db", "u4", true),
            slice("default", "web", "u5", true));
    assertEquals(Set.of("u1", "u2"), KubernetesDerivations.readyPodUids("default", "db", slices));
    assertEquals("db", KubernetesDerivations.serviceOf(slices.get(0)));
    assertNull(
        KubernetesDerivations.serviceOf(
            new EndpointSliceBuilder().withNewMetadata().withName("s").endMetadata().build()));
  }
}
