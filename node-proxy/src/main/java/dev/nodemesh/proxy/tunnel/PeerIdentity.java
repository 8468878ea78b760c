package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.identity.SpiffeId;
import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Reads the SPIFFE ID a TLS peer proved: the single URI SAN of its (already chain-verified) leaf
 * certificate. More than one URI SAN, none, another scheme, another shape or another trust domain
 * is refused, as the X.509 SVID specification requires.
 */
public final class PeerIdentity {
  private static final int URI_SAN = 6;

  private PeerIdentity() {}

  /**
   * The verified peer's SPIFFE ID.
   *
   * @throws SSLPeerUnverifiedException naming why the peer has no acceptable identity
   */
  public static SpiffeId of(SSLSession session, String trustDomain)
      throws SSLPeerUnverifiedException {
    Certificate[] chain = session.getPeerCertificates();
    if (chain.length == 0 || !(chain[0] instanceof X509Certificate leaf)) {
      throw new SSLPeerUnverifiedException("peer presented no X.509 certificate");
    }
    return of(leaf, trustDomain);
  }

  /** The SPIFFE ID in {@code leaf}'s URI SAN, which must be in {@code trustDomain}. */
  public static SpiffeId of(X509Certificate leaf, String trustDomain)
      throws SSLPeerUnverifiedException {
    List<String> uris = new ArrayList<>();
    try {
      Collection<List<?>> sans = leaf.getSubjectAlternativeNames();
      if (sans != null) {
        for (List<?> san : sans) {
          if (san.size() == 2 && Integer.valueOf(URI_SAN).equals(san.get(0))) {
            uris.add(String.valueOf(san.get(1)));
          }
        }
      }
    } catch (CertificateParsingException e) {
      throw unverified("unreadable subject alternative names: " + e.getMessage());
    }
    if (uris.size() != 1) {
      throw unverified("peer certificate must have exactly one URI SAN, has " + uris);
    }
    SpiffeId id;
    try {
      id = SpiffeId.parse(uris.get(0));
    } catch (IllegalArgumentException e) {
      throw unverified(String.valueOf(e.getMessage()));
    }
    if (!id.trustDomain().equals(trustDomain)) {
      throw unverified(id + " is not in trust domain " + trustDomain);
    }
    return id;
  }

  private static SSLPeerUnverifiedException unverified(String why) {
    return new SSLPeerUnverifiedException(why);
  }
}
