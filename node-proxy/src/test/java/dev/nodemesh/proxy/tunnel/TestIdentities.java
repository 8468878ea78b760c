package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.identity.WorkloadCertificate;
import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A test {@link IdentityProvider}: a root CA made with Bouncy Castle and per-workload X.509 SVIDs
 * (EC P-256, URI SAN, both TLS key purposes) issued on first use and held. For negative tests a
 * workload can be made to present another SPIFFE ID, or a certificate from another root.
 */
public final class TestIdentities implements IdentityProvider {
  private static final SecureRandom RANDOM = new SecureRandom();

  /** A certificate authority: a self-signed root. */
  public record Ca(KeyPair keys, X509Certificate cert) {
    public static Ca create(String name) {
      try {
        KeyPair kp = ecKeys();
        X500Name subject = new X500Name("CN=" + name + ",O=nodemesh-test");
        Instant now = Instant.now();
        X509v3CertificateBuilder b =
            new JcaX509v3CertificateBuilder(
                subject,
                new BigInteger(64, RANDOM),
                Date.from(now.minus(Duration.ofMinutes(5))),
                Date.from(now.plus(Duration.ofDays(1))),
                subject,
                kp.getPublic());
        JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(
            Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        b.addExtension(
            Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(kp.getPublic()));
        return new Ca(kp, sign(b, kp));
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }

    /** An SVID for {@code uri} with {@code key}, valid for an hour. */
    public X509Certificate issue(PublicKey key, String uri) {
      try {
        Instant now = Instant.now();
        X509v3CertificateBuilder b =
            new JcaX509v3CertificateBuilder(
                cert,
                new BigInteger(64, RANDOM),
                Date.from(now.minus(Duration.ofMinutes(5))),
                Date.from(now.plus(Duration.ofHours(1))),
                new X500Name("O=nodemesh-test"),
                key);
        JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        b.addExtension(
            Extension.keyUsage,
            true,
            new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
        b.addExtension(
            Extension.extendedKeyUsage,
            false,
            new ExtendedKeyUsage(
                new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
        b.addExtension(
            Extension.subjectAlternativeName,
            true,
            new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, uri)));
        b.addExtension(
            Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(cert));
        return sign(b, keys);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, KeyPair signer)
        throws Exception {
      ContentSigner s = new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate());
      return new JcaX509CertificateConverter().getCertificate(b.build(s));
    }
  }

  private final Ca ca;
  private final Map<SpiffeId, WorkloadCertificate> held = new ConcurrentHashMap<>();
  private final Map<SpiffeId, String> presentAs = new ConcurrentHashMap<>();
  private final Map<SpiffeId, Ca> otherRoot = new ConcurrentHashMap<>();
  private final AtomicInteger issued = new AtomicInteger();

  public TestIdentities(Ca ca) {
    this.ca = ca;
  }

  /** {@code id}'s certificate will carry {@code uri} instead (a workload lying about itself). */
  public TestIdentities presentAs(SpiffeId id, String uri) {
    presentAs.put(id, uri);
    held.remove(id);
    return this;
  }

  /** {@code id}'s certificate will be signed by {@code root}, which peers do not trust. */
  public TestIdentities signWith(SpiffeId id, Ca root) {
    otherRoot.put(id, root);
    held.remove(id);
    return this;
  }

  /** Forgets {@code id}'s certificate: the next request issues a new one (a rotation). */
  public void rotate(SpiffeId id) {
    held.remove(id);
  }

  public int issued() {
    return issued.get();
  }

  @Override
  public CompletionStage<WorkloadCertificate> certificate(SpiffeId id) {
    return CompletableFuture.completedFuture(held.computeIfAbsent(id, this::issue));
  }

  private WorkloadCertificate issue(SpiffeId id) {
    KeyPair kp = ecKeys();
    Ca signer = otherRoot.getOrDefault(id, ca);
    X509Certificate leaf = signer.issue(kp.getPublic(), presentAs.getOrDefault(id, id.toString()));
    issued.incrementAndGet();
    return new WorkloadCertificate(id, kp.getPrivate(), List.of(leaf), List.of(signer.cert()));
  }

  @Override
  public List<X509Certificate> trustAnchors() {
    return List.of(ca.cert());
  }

  private static KeyPair ecKeys() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp256r1"));
      return g.generateKeyPair();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
