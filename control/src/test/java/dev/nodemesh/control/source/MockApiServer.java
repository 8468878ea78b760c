package dev.nodemesh.control.source;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.util.HashMap;
import java.util.Map;

/**
 * fabric8's mock API server in CRUD mode (real lists and watches) and a client of it, for the
 * Kubernetes source's tests. Start one per test: a class-wide one carried the previous test's
 * closing watches into the next test's clean-up, whose DELETE then sometimes hung for the client's
 * whole 10 s timeout. Close it after the source that watches it.
 */
final class MockApiServer implements AutoCloseable {
  private final KubernetesMockServer server;
  private final KubernetesClient client;

  private MockApiServer(KubernetesMockServer server) {
    this.server = server;
    this.client = server.createClient();
  }

  static MockApiServer start() {
    KubernetesMockServer server =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            new HashMap<>(),
            new KubernetesCrudDispatcher(),
            false);
    server.init();
    return new MockApiServer(server);
  }

  KubernetesClient client() {
    return client;
  }

  /**
   * A running pod in namespace default as the API server holds it: uid "uid-NAME", service account
   * "sa-NAME", one container with an http port (8080), {@code ip} as its only address, and its
   * Ready condition {@code ready}.
   */
  static Pod pod(String name, String ip, boolean ready, Map<String, String> labels, String node) {
    return new PodBuilder()
        .withNewMetadata()
        .withName(name)
        .withNamespace("default")
        .withUid("uid-" + name)
        .withLabels(labels)
        .endMetadata()
        .withNewSpec()
        .withNodeName(node)
        .withServiceAccountName("sa-" + name)
        .addNewContainer()
        .withName("app")
        .withImage("app")
        .addNewPort()
        .withName("http")
        .withContainerPort(8080)
        .endPort()
        .endContainer()
        .endSpec()
        .withNewStatus()
        .withPhase("Running")
        .withPodIP(ip)
        .addNewPodIP()
        .withIp(ip)
        .endPodIP()
        .addNewCondition()
        .withType("Ready")
        .withStatus(ready ? "True" : "False")
        .endCondition()
        .endStatus()
        .build();
  }

  @Override
  public void close() {
    client.close();
    server.destroy();
  }
}
