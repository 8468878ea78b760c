package dev.nodemesh.proxy.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.identity.SpiffeId;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import org.junit.jupiter.api.Test;

class DeferredIdentityProviderTest {
  private static final SpiffeId CHECKOUT = new SpiffeId("cluster.local", "shop", "checkout");
  private static final SpiffeId PAYMENTS = new SpiffeId("cluster.local", "shop", "payments");

  /** Answers each id with a future of its own that the test completes. */
  private static final class Provider implements IdentityProvider {
    final Map<SpiffeId, CompletableFuture<WorkloadCertificate>> asked = new HashMap<>();
    final List<X509Certificate> anchors = new ArrayList<>();

    @Override
    public CompletionStage<WorkloadCertificate> certificate(SpiffeId id) {
      return asked.computeIfAbsent(id, i -> new CompletableFuture<>());
    }

    @Override
    public List<X509Certificate> trustAnchors() {
      return anchors;
    }
  }

  @Test
  void aRequestBeforeTheProviderIsSetWaitsAndThenGoesToIt() {
    DeferredIdentityProvider deferred = new DeferredIdentityProvider();
    CompletableFuture<WorkloadCertificate> early =
        deferred.certificate(CHECKOUT).toCompletableFuture();
    assertFalse(early.isDone());
    assertEquals(List.of(), deferred.trustAnchors());

    Provider real = new Provider();
    deferred.set(real);
    assertEquals(List.of(CHECKOUT), List.copyOf(real.asked.keySet()));
    assertFalse(early.isDone(), "the real provider has not answered yet");
    IllegalStateException refused = new IllegalStateException("CA refused");
    real.asked.get(CHECKOUT).completeExceptionally(refused);
    CompletionException e = assertThrows(CompletionException.class, early::join);
    assertSame(refused, e.getCause());
  }

  @Test
  void onceSetEveryCallIsTheRealProvidersAndASecondSetIsRefused() {
    DeferredIdentityProvider deferred = new DeferredIdentityProvider();
    Provider real = new Provider();
    deferred.set(real);
    CompletionStage<WorkloadCertificate> s = deferred.certificate(PAYMENTS);
    assertSame(real.asked.get(PAYMENTS), s);
    assertSame(real.anchors, deferred.trustAnchors());
    assertThrows(IllegalStateException.class, () -> deferred.set(new Provider()));
    assertTrue(real.asked.containsKey(PAYMENTS));
  }
}
