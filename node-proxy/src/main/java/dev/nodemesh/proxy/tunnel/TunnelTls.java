package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.identity.WorkloadCertificate;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLException;

/**
 * The TLS side of HBONE: BoringSSL (netty-tcnative) contexts, TLS 1.3 only, ALPN {@code h2}, mutual
 * authentication against {@link IdentityProvider#trustAnchors()}. One server and one client context
 * per workload identity, cached and rebuilt when the provider hands out a different certificate
 * (rotation) or different anchors, so new connections use the new certificate while open ones keep
 * theirs. Building a context takes a few milliseconds and happens on whichever thread completes the
 * certificate lookup (the event loop when the certificate is held), once per rotation.
 *
 * <p>Peer names are not checked here (no hostname verification): the caller checks the SPIFFE ID
 * with {@link PeerIdentity} once the handshake is done.
 */
public final class TunnelTls {
  static final String TLS_13 = "TLSv1.3";

  private record Entry(
      WorkloadCertificate certificate, List<X509Certificate> anchors, SslContext context) {}

  private final IdentityProvider identities;
  private final ConcurrentHashMap<SpiffeId, Entry> servers = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<SpiffeId, Entry> clients = new ConcurrentHashMap<>();

  public TunnelTls(IdentityProvider identities) {
    requireBoringSsl();
    this.identities = identities;
  }

  /** Fails with the reason when netty-tcnative's BoringSSL cannot be loaded on this machine. */
  public static void requireBoringSsl() {
    if (!OpenSsl.isAvailable()) {
      Throwable cause = OpenSsl.unavailabilityCause();
      throw new IllegalStateException(
          "HBONE needs netty-tcnative BoringSSL, which cannot be loaded here: " + cause, cause);
    }
  }

  /** The context that presents {@code id}'s certificate to clients and requires theirs. */
  public CompletionStage<SslContext> server(SpiffeId id) {
    return identities.certificate(id).thenApply(c -> cached(servers, c, true));
  }

  /** The context that presents {@code id}'s certificate to servers. */
  public CompletionStage<SslContext> client(SpiffeId id) {
    return identities.certificate(id).thenApply(c -> cached(clients, c, false));
  }

  private SslContext cached(
      ConcurrentHashMap<SpiffeId, Entry> cache, WorkloadCertificate cert, boolean server) {
    List<X509Certificate> anchors = identities.trustAnchors();
    Entry e = cache.get(cert.id());
    if (e != null && current(e, cert, anchors)) {
      return e.context();
    }
    return cache
        .compute(
            cert.id(),
            (id, old) ->
                old != null && current(old, cert, anchors)
                    ? old
                    : new Entry(cert, anchors, build(cert, anchors, server)))
        .context();
  }

  private static boolean current(Entry e, WorkloadCertificate cert, List<X509Certificate> anchors) {
    return (e.certificate() == cert || e.certificate().equals(cert))
        && (e.anchors() == anchors || e.anchors().equals(anchors));
  }

  static SslContext build(WorkloadCertificate cert, List<X509Certificate> anchors, boolean server) {
    try {
      SslContextBuilder b =
          server
              ? SslContextBuilder.forServer(cert.key(), cert.chain()).clientAuth(ClientAuth.REQUIRE)
              : SslContextBuilder.forClient()
                  .keyManager(cert.key(), cert.chain())
                  // Peers are named by SPIFFE ID in a URI SAN, checked after the handshake.
                  .endpointIdentificationAlgorithm(null);
      return b.sslProvider(SslProvider.OPENSSL)
          .protocols(TLS_13)
          .trustManager(anchors)
          .applicationProtocolConfig(
              new ApplicationProtocolConfig(
                  ApplicationProtocolConfig.Protocol.ALPN,
                  // The only behaviours BoringSSL supports; a peer without h2 is refused after
                  // the handshake by the negotiation handler.
                  ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                  ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT,
                  ApplicationProtocolNames.HTTP_2))
          .build();
    } catch (SSLException e) {
      throw new IllegalStateException("cannot build a TLS context for " + cert.id(), e);
    }
  }
}
