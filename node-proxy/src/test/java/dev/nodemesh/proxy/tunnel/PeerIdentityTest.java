package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.identity.SpiffeId;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class PeerIdentityTest {
  private static TestIdentities.Ca ca;
  private static PublicKey key;

  @BeforeAll
  static void setUp() throws Exception {
    ca = TestIdentities.Ca.create("root");
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    key = g.generateKeyPair().getPublic();
  }

  @Test
  void theSpiffeIdComesFromTheUriSan() throws Exception {
    X509Certificate leaf = ca.issue(key, "spiffe://cluster.local/ns/shop/sa/cart");
    assertEquals(
        new SpiffeId("cluster.local", "shop", "cart"), PeerIdentity.of(leaf, "cluster.local"));
  }

  @Test
  void anotherTrustDomainIsRefused() {
    X509Certificate leaf = ca.issue(key, "spiffe://evil.example/ns/shop/sa/cart");
    SSLPeerUnverifiedException e =
        assertThrows(
            SSLPeerUnverifiedException.class, () -> PeerIdentity.of(leaf, "cluster.local"));
    assertTrue(e.getMessage().contains("trust domain"), e.getMessage());
  }

  @Test
  void aUriThatIsNotAWorkloadIdIsRefused() {
    for (String uri :
        new String[] {
          "https://cluster.local/ns/shop/sa/cart",
          "spiffe://cluster.local/ns/shop",
          "spiffe://cluster.local/shop/cart/x/y"
        }) {
      X509Certificate leaf = ca.issue(key, uri);
      assertThrows(
          SSLPeerUnverifiedException.class, () -> PeerIdentity.of(leaf, "cluster.local"), uri);
    }
  }

  @Test
  void aCertificateWithoutUriSanIsRefused() {
    // The CA itself has no SAN at all.
    assertThrows(
        SSLPeerUnverifiedException.class, () -> PeerIdentity.of(ca.cert(), "cluster.local"));
  }
}
