package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.identity.SpiffeId;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import org.junit.jupiter.api.Test;

class TunnelTlsTest {
  private static final SpiffeId ECHO = new SpiffeId("cluster.local", "default", "echo");
  private static final SpiffeId CART = new SpiffeId("cluster.local", "shop", "cart");

  @Test
  void boringSslIsLoaded() {
    TunnelTls.requireBoringSsl();
    assertTrue(OpenSsl.isAvailable());
    assertTrue(OpenSsl.versionString().contains("BoringSSL"), OpenSsl.versionString());
  }

  @Test
  void oneContextPerIdentityUntilItsCertificateRotates() throws Exception {
    TestIdentities ids = new TestIdentities(TestIdentities.Ca.create("root"));
    TunnelTls tls = new TunnelTls(ids);
    SslContext first = get(tls, ECHO, true);
    assertSame(first, get(tls, ECHO, true), "cached while the certificate is the same");
    assertNotSame(first, get(tls, CART, true), "another identity, another context");
    assertNotSame(first, get(tls, ECHO, false), "client and server contexts are apart");
    ids.rotate(ECHO);
    SslContext rotated = get(tls, ECHO, true);
    assertNotSame(first, rotated, "a new certificate gives new connections a new context");
    assertSame(rotated, get(tls, ECHO, true));
    assertTrue(rotated.isServer());
    assertTrue(rotated.applicationProtocolNegotiator().protocols().contains("h2"));
  }

  private static SslContext get(TunnelTls tls, SpiffeId id, boolean server) throws Exception {
    return (server ? tls.server(id) : tls.client(id)).toCompletableFuture().get();
  }
}
