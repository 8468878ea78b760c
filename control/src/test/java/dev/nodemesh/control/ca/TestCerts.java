package dev.nodemesh.control.ca;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/** Test-only certificate helpers: CSRs (good and forged) and an operator's CA hierarchy. */
final class TestCerts {
  private TestCerts() {}

  static KeyPair ec() throws Exception {
    return CertificateAuthority.ecKeyPair();
  }

  /** A CSR that claims {@code claimedSan} (which the CA must ignore), signed with its own key. */
  static PKCS10CertificationRequest csr(KeyPair pair, String subject) throws Exception {
    return new JcaPKCS10CertificationRequestBuilder(new X500Principal(subject), pair.getPublic())
        .build(new JcaContentSignerBuilder("SHA256withECDSA").build(pair.getPrivate()));
  }

  /** A CSR carrying {@code claimed}'s public key but signed by another key: a forgery. */
  static PKCS10CertificationRequest forgedCsr(PublicKey claimed) throws Exception {
    KeyPair other = ec();
    return new JcaPKCS10CertificationRequestBuilder(new X500Principal("CN=forged"), claimed)
        .build(new JcaContentSignerBuilder("SHA256withECDSA").build(other.getPrivate()));
  }

  /** A CA certificate for {@code subjectKey}, signed by {@code issuerKey} as {@code issuer}. */
  static X509Certificate caCert(
      X500Principal issuer,
      PrivateKey issuerKey,
      X500Principal subject,
      PublicKey subjectKey,
      Instant now)
      throws Exception {
    X509v3CertificateBuilder b =
        new JcaX509v3CertificateBuilder(
            issuer,
            BigInteger.valueOf(now.toEpochMilli()),
            Date.from(now.minusSeconds(3600)),
            Date.from(now.plusSeconds(86400L * 365)),
            subject,
            subjectKey);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
    b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
    return new JcaX509CertificateConverter()
        .getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKey)));
  }

  /** Validates {@code chain} (leaf first, no root) up to {@code roots} at {@code at}. */
  static void validate(List<X509Certificate> chain, List<X509Certificate> roots, Instant at)
      throws Exception {
    Set<TrustAnchor> anchors = new HashSet<>();
    for (X509Certificate r : roots) {
      anchors.add(new TrustAnchor(r, null));
    }
    PKIXParameters params = new PKIXParameters(anchors);
    params.setRevocationEnabled(false);
    params.setDate(Date.from(at));
    CertPathValidator.getInstance("PKIX")
        .validate(CertificateFactory.getInstance("X.509").generateCertPath(chain), params);
  }
}
