package dev.nodemesh.control.ca;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * A root kept in a Kubernetes Secret ({@code ca.crt}, {@code ca.key}), so every control-plane
 * replica and every restart signs under one root. Creating it is the race between replicas: the one
 * whose create succeeds wins, the others read the winner's (HTTP 409). RBAC: get and create on this
 * one Secret.
 */
public final class SecretRootStore implements RootStore {
  private final KubernetesClient client;
  private final String namespace;
  private final String name;

  public SecretRootStore(KubernetesClient client, String namespace, String name) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
  }

  @Override
  public @Nullable SigningMaterial load() throws IOException, GeneralSecurityException {
    Secret s = client.secrets().inNamespace(namespace).withName(name).get();
    if (s == null) {
      return null;
    }
    Map<String, String> data = s.getData() == null ? Map.of() : s.getData();
    String cert = data.get(StoredRoots.CERT);
    String key = data.get(StoredRoots.KEY);
    if (cert == null || key == null) {
      throw new GeneralSecurityException(
          describe() + " lacks " + StoredRoots.CERT + " or " + StoredRoots.KEY);
    }
    return StoredRoots.parse(decode(cert), decode(key), describe());
  }

  @Override
  public SigningMaterial storeIfAbsent(SigningMaterial made)
      throws IOException, GeneralSecurityException {
    Secret secret =
        new SecretBuilder()
            .withNewMetadata()
            .withNamespace(namespace)
            .withName(name)
            .addToLabels("app.kubernetes.io/part-of", "nodemesh")
            .endMetadata()
            .withType("Opaque")
            .addToData(StoredRoots.CERT, encode(StoredRoots.certPem(made)))
            .addToData(StoredRoots.KEY, encode(StoredRoots.keyPem(made)))
            .build();
    try {
      client.secrets().inNamespace(namespace).resource(secret).create();
      return made;
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw new IOException("creating " + describe() + ": " + e.getMessage(), e);
      }
      SigningMaterial there = load();
      if (there == null) {
        throw new IOException(describe() + " conflicted on create but is gone", e);
      }
      return there;
    }
  }

  private static String encode(String text) {
    return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.US_ASCII));
  }

  private static String decode(String b64) {
    return new String(Base64.getDecoder().decode(b64), StandardCharsets.US_ASCII);
  }

  @Override
  public String describe() {
    return "Secret " + namespace + "/" + name;
  }
}
