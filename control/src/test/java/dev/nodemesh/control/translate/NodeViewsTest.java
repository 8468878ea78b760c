package dev.nodemesh.control.translate;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static dev.nodemesh.control.Fixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.api.config.v1.AuthorizationPolicy;
import dev.nodemesh.api.config.v1.EndpointList;
import dev.nodemesh.api.config.v1.PeerAuthentication;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class NodeViewsTest {
  private final ResourceStore store = new ResourceStore(() -> 0, () -> {});

  private Set<String> workloads(String node) {
    return NodeViews.of(store.snapshot()).forNode(node).get(ResourceType.WORKLOAD).keySet();
  }

  @Test
  void nodeGetsEndpointsEverywhereAndItsOwnPodsButNotOtherNodesLoosePods() {
    store.put(ResourceType.SERVICE, key("web"), service("web", "10.96.0.1", Map.of("app", "web")));
    store.put(
        ResourceType.WORKLOAD, key("web-1"), pod("web-1", "n1", "10.0.1.1", Map.of("app", "web")));
    store.put(
        ResourceType.WORKLOAD, key("web-2"), pod("web-2", "n2", "10.0.2.1", Map.of("app", "web")));
    store.put(ResourceType.WORKLOAD, key("client-1"), pod("client-1", "n1", "10.0.1.2", Map.of()));
    store.put(ResourceType.WORKLOAD, key("batch-2"), pod("batch-2", "n2", "10.0.2.2", Map.of()));

    assertEquals(Set.of(key("web-1"), key("web-2"), key("client-1")), workloads("n1"));
    assertEquals(Set.of(key("web-1"), key("web-2"), key("batch-2")), workloads("n2"));
    assertEquals(Set.of(key("web-1"), key("web-2")), workloads("n3"));
    assertEquals(
        Set.of(key("web")),
        NodeViews.of(store.snapshot()).forNode("n3").get(ResourceType.SERVICE).keySet());
  }

  @Test
  void selectorsMatchOnlyInTheirNamespaceAndListedUidsAreEndpoints() {
    store.put(ResourceType.SERVICE, key("web"), service("web", "10.96.0.1", Map.of("app", "web")));
    store.put(
        ResourceType.WORKLOAD,
        "other/web-1",
        pod("web-1", "n1", "10.0.1.1", Map.of("app", "web")).toBuilder()
            .setNamespace("other")
            .build());
    store.put(ResourceType.WORKLOAD, key("db-1"), pod("db-1", "n1", "10.0.1.3", Map.of()));
    Service manual =
        Service.newBuilder()
            .setName("db")
            .setNamespace("default")
            .setEndpointList(EndpointList.newBuilder().addWorkloadUids("uid-db-1"))
            .build();
    store.put(ResourceType.SERVICE, key("db"), manual);

    assertEquals(Set.of(key("db-1")), workloads("n2"));
    assertEquals(Set.of(key("db-1"), "other/web-1"), workloads("n1"));
  }

  @Test
  void aWorkloadWhoseIpIsTakenIsLeftOutSoNoNodeRejectsTheWholeView() {
    store.put(ResourceType.SERVICE, key("web"), service("web", "10.96.0.1", Map.of("app", "web")));
    // A terminating pod still holds the IP Kubernetes already gave to its successor.
    store.put(
        ResourceType.WORKLOAD,
        key("old"),
        pod("old", "n1", "10.0.1.1", Map.of("app", "web")).toBuilder().setReady(false).build());
    store.put(
        ResourceType.WORKLOAD, key("new"), pod("new", "n1", "10.0.1.1", Map.of("app", "web")));
    store.put(ResourceType.WORKLOAD, key("vip"), pod("vip", "n1", "10.96.0.1", Map.of()));
    NodeViews views = NodeViews.of(store.snapshot());
    assertEquals(Set.of(key("new")), views.forNode("n1").get(ResourceType.WORKLOAD).keySet());
    assertEquals(2, views.conflicts().size(), views.conflicts().toString());
  }

  @Test
  void everyPolicyReachesEveryNodeAndAChangeIsACandidate() {
    store.put(
        ResourceType.WORKLOAD, key("web-1"), pod("web-1", "n1", "10.0.1.1", Map.of("app", "web")));
    AuthorizationPolicy deny =
        AuthorizationPolicy.newBuilder()
            .setName("deny-all")
            .setNamespace("default")
            .setAction(AuthorizationPolicy.Action.ALLOW)
            .build();
    PeerAuthentication strict =
        PeerAuthentication.newBuilder()
            .setName("mesh")
            .setNamespace("nodemesh-system")
            .setMode(PeerAuthentication.Mode.STRICT)
            .build();
    store.put(ResourceType.AUTHORIZATION_POLICY, key("deny-all"), deny);
    store.put(ResourceType.PEER_AUTHENTICATION, "nodemesh-system/mesh", strict);
    NodeViews first = NodeViews.of(store.snapshot());

    for (String node : new String[] {"n1", "n2"}) {
      var view = first.forNode(node);
      assertEquals(Set.of(key("deny-all")), view.get(ResourceType.AUTHORIZATION_POLICY).keySet());
      assertEquals(
          deny, view.get(ResourceType.AUTHORIZATION_POLICY).get(key("deny-all")).message());
      assertEquals(
          Set.of("nodemesh-system/mesh"), view.get(ResourceType.PEER_AUTHENTICATION).keySet());
    }

    store.put(
        ResourceType.AUTHORIZATION_POLICY,
        key("deny-all"),
        deny.toBuilder().setAction(AuthorizationPolicy.Action.DENY).build());
    store.remove(ResourceType.PEER_AUTHENTICATION, "nodemesh-system/mesh");
    NodeViews second = NodeViews.of(store.snapshot(), first);

    assertEquals(
        Set.of(key("deny-all")),
        second.candidates(ResourceType.AUTHORIZATION_POLICY, "n2", Map.of()));
    assertEquals(
        Set.of("nodemesh-system/mesh"),
        second.candidates(ResourceType.PEER_AUTHENTICATION, "n2", Map.of()));
    assertEquals(Map.of(), second.forNode("n2").get(ResourceType.PEER_AUTHENTICATION));
  }
}
