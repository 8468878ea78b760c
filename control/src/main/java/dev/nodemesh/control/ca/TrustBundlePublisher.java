package dev.nodemesh.control.ca;

import dev.nodemesh.model.identity.Pem;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes the CA's trust bundle (the root certificates, PEM, never a key) as {@code ca.crt} of a
 * ConfigMap in the node proxies' namespace, where the DaemonSet mounts it for {@code nodemesh proxy
 * --ca-root}: the proxies verify the control plane's serving certificate, and each other's, against
 * it.
 *
 * <p>{@link #publish} is idempotent: it reads the ConfigMap, writes nothing when {@code ca.crt}
 * already holds this bundle, updates it when it holds another (a new root, or someone edited it),
 * and creates it when absent (a replica that loses the create race to another updates instead). A
 * background reconcile repeats this, so a deleted or edited ConfigMap, or a bundle that changed, is
 * put right again.
 *
 * <p>RBAC: get, create and update on configmaps in that namespace. A 403 is reported as such, with
 * the rule that is missing, since the proxies cannot verify anything without this ConfigMap.
 */
public final class TrustBundlePublisher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(TrustBundlePublisher.class);
  public static final String DEFAULT_NAME = "nodemesh-ca-root";
  public static final String KEY = "ca.crt";

  private final KubernetesClient client;
  private final String namespace;
  private final String name;
  private final Supplier<List<X509Certificate>> bundle;
  private volatile @Nullable ScheduledFuture<?> reconcile;
  private volatile @Nullable ScheduledExecutorService scheduler;

  /**
   * @param bundle the roots to publish, asked again at every reconcile
   */
  public TrustBundlePublisher(
      KubernetesClient client,
      String namespace,
      String name,
      Supplier<List<X509Certificate>> bundle) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
    this.bundle = bundle;
  }

  /** What happened in one {@link #publish}. */
  public enum Outcome {
    CREATED,
    UPDATED,
    UNCHANGED
  }

  /** The PEM text published for {@code roots}: one block per root, in order. */
  static String pem(List<X509Certificate> roots) {
    if (roots.isEmpty()) {
      throw new IllegalArgumentException("an empty trust bundle");
    }
    StringBuilder b = new StringBuilder();
    for (X509Certificate r : roots) {
      b.append(Pem.encode(r));
    }
    return b.toString();
  }

  /** Makes the ConfigMap hold the current bundle; see the class comment. */
  public Outcome publish() throws IOException {
    String pem = pem(bundle.get());
    try {
      for (int attempt = 0; ; attempt++) {
        ConfigMap there = client.configMaps().inNamespace(namespace).withName(name).get();
        if (there == null) {
          try {
            client.configMaps().inNamespace(namespace).resource(build(pem, null)).create();
            log.info("CA: published the trust bundle to {}", describe());
            return Outcome.CREATED;
          } catch (KubernetesClientException e) {
            if (e.getCode() != HttpURLConnection.HTTP_CONFLICT || attempt > 2) {
              throw e;
            }
            continue; // another replica created it: compare with theirs
          }
        }
        Map<String, String> data = there.getData() == null ? Map.of() : there.getData();
        if (pem.equals(data.get(KEY)) && data.size() == 1) {
          return Outcome.UNCHANGED;
        }
        try {
          // With the resourceVersion read above: a concurrent writer makes this a 409, and the
          // loop compares again instead of overwriting blindly.
          client
              .configMaps()
              .inNamespace(namespace)
              .resource(build(pem, there.getMetadata().getResourceVersion()))
              .update();
          log.info("CA: updated the trust bundle in {}", describe());
          return Outcome.UPDATED;
        } catch (KubernetesClientException e) {
          if (e.getCode() != HttpURLConnection.HTTP_CONFLICT || attempt > 2) {
            throw e;
          }
        }
      }
    } catch (KubernetesClientException e) {
      if (e.getCode() == HttpURLConnection.HTTP_FORBIDDEN) {
        throw new IOException(
            "publishing the CA root to "
                + describe()
                + " is forbidden: the control plane's service account needs get, create and"
                + " update on configmaps in namespace "
                + namespace
                + " (deploy/kubernetes/10-control-rbac.yaml, Role nodemesh-control-ca): "
                + e.getMessage(),
            e);
      }
      throw new IOException("publishing the CA root to " + describe() + ": " + e.getMessage(), e);
    }
  }

  private ConfigMap build(String pem, @Nullable String resourceVersion) {
    return new ConfigMapBuilder()
        .withNewMetadata()
        .withNamespace(namespace)
        .withName(name)
        .withResourceVersion(resourceVersion)
        .addToLabels("app.kubernetes.io/part-of", "nodemesh")
        .addToAnnotations(
            "nodemesh.dev/description",
            "The mesh CA's root certificates (public). Written by nodemesh-control; node proxies"
                + " mount it as --ca-root.")
        .endMetadata()
        .addToData(KEY, pem)
        .build();
  }

  /**
   * Publishes now (so a start without the RBAC fails at once, with {@link #publish}'s message) and
   * then every {@code periodSeconds} on its own {@code nodemesh-ca-publish} thread (API calls
   * block, so never on the control plane's thread), logging failures of the later rounds.
   */
  public TrustBundlePublisher start(long periodSeconds) throws IOException {
    publish();
    scheduler =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-ca-publish");
              t.setDaemon(true);
              return t;
            });
    reconcile =
        scheduler.scheduleWithFixedDelay(
            () -> {
              try {
                publish();
              } catch (IOException | RuntimeException e) {
                log.warn("CA: {}", e.getMessage());
              }
            },
            periodSeconds,
            periodSeconds,
            TimeUnit.SECONDS);
    return this;
  }

  public String describe() {
    return "ConfigMap " + namespace + "/" + name;
  }

  @Override
  public void close() {
    ScheduledFuture<?> r = reconcile;
    if (r != null) {
      r.cancel(false);
    }
    ScheduledExecutorService s = scheduler;
    if (s != null) {
      s.shutdownNow();
    }
  }
}
