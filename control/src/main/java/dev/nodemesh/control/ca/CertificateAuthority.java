package dev.nodemesh.control.ca;

import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.model.identity.SpiffeId;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCSException;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Signs X.509 SVIDs for workloads. The identity in a certificate is always the one the caller
 * passes (derived from the control plane's store); whatever subject or SANs the CSR carries are
 * ignored, and only its public key is used, after its signature has been checked.
 *
 * <p>A leaf has an empty subject and one critical URI SAN, {@code spiffe://<td>/ns/<ns>/sa/<sa>}
 * (the SPIFFE X.509-SVID shape), digitalSignature (+ keyEncipherment for RSA keys), EKU serverAuth
 * and clientAuth, is not a CA, starts a minute in the past (clock skew between nodes) and never
 * outlives the CA's own certificate.
 *
 * <p>Thread-safe: all state is final; signing takes no lock.
 */
public final class CertificateAuthority {
  private static final Logger log = LoggerFactory.getLogger(CertificateAuthority.class);
  static final Duration ROOT_LIFETIME = Duration.ofDays(3650);
  static final Duration BACKDATE = Duration.ofMinutes(1);
  private static final Pattern IP_LITERAL = Pattern.compile("[0-9.]+|.*:.*");
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SigningMaterial material;
  private final CaSettings settings;
  private final Clock clock;
  private final JcaX509ExtensionUtils extensions;

  private CertificateAuthority(SigningMaterial material, CaSettings settings, Clock clock) {
    this.material = material;
    this.settings = settings;
    this.clock = clock;
    try {
      this.extensions = new JcaX509ExtensionUtils();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-1 for key identifiers is in every JDK", e);
    }
  }

  /**
   * The root in {@code store}, or a new one (EC P-256, ten years) stored there first. A restarted
   * control plane thus signs under the root nodes already trust.
   */
  public static CertificateAuthority loadOrCreate(RootStore store, CaSettings settings, Clock clock)
      throws IOException, GeneralSecurityException {
    SigningMaterial root = store.load();
    if (root == null) {
      root = store.storeIfAbsent(newRoot(settings.trustDomain(), clock));
      log.info(
          "CA: new root {} (serial {}) in {}",
          root.certificate().getSubjectX500Principal(),
          root.certificate().getSerialNumber().toString(16),
          store.describe());
    } else {
      log.info(
          "CA: root {} from {}, valid until {}",
          root.certificate().getSubjectX500Principal(),
          store.describe(),
          root.certificate().getNotAfter().toInstant());
    }
    return of(root, settings, clock);
  }

  /**
   * An operator-supplied intermediate: its certificate, its private key, and a chain file holding
   * every certificate from above the intermediate up to and including the operator's root (the
   * self-signed ones are the trust bundle). The whole path is validated before anything is signed.
   */
  public static CertificateAuthority fromFiles(
      Path certFile, Path keyFile, Path chainFile, CaSettings settings, Clock clock)
      throws IOException, GeneralSecurityException {
    List<X509Certificate> certs = Pem.certificates(read(certFile));
    if (certs.isEmpty()) {
      throw new GeneralSecurityException(certFile + ": no certificate");
    }
    PrivateKey key = Pem.privateKey(read(keyFile));
    List<X509Certificate> roots = new ArrayList<>();
    List<X509Certificate> intermediates = new ArrayList<>();
    for (X509Certificate c : Pem.certificates(read(chainFile))) {
      if (c.equals(certs.get(0))) {
        continue;
      }
      (selfSigned(c) ? roots : intermediates).add(c);
    }
    if (roots.isEmpty()) {
      throw new GeneralSecurityException(
          chainFile + ": the chain must end in the (self-signed) root");
    }
    return of(new SigningMaterial(key, certs.get(0), intermediates, roots), settings, clock);
  }

  /** A CA over {@code material}, checked: the key matches, it may sign, the path validates. */
  public static CertificateAuthority of(SigningMaterial material, CaSettings settings, Clock clock)
      throws GeneralSecurityException {
    X509Certificate cert = material.certificate();
    checkKeyMatches(material.key(), cert, cert.getSubjectX500Principal().getName());
    boolean[] usage = cert.getKeyUsage();
    if (cert.getBasicConstraints() < 0 || (usage != null && !usage[5])) {
      throw new GeneralSecurityException(
          cert.getSubjectX500Principal()
              + " is not a CA certificate (basicConstraints/keyCertSign)");
    }
    if (!material.isRoot()) {
      validate(material, cert, Date.from(clock.instant()));
    }
    return new CertificateAuthority(material, settings, clock);
  }

  /**
   * Signs an SVID for {@code id} with the CSR's public key.
   *
   * @param requested the lifetime asked for; zero or negative means the default, longer than the
   *     maximum is cut to the maximum
   * @return the chain, leaf first, without the root
   */
  public List<X509Certificate> sign(PKCS10CertificationRequest csr, SpiffeId id, Duration requested)
      throws InvalidCsrException {
    if (!id.trustDomain().equals(settings.trustDomain())) {
      throw new IllegalArgumentException(id + " is outside trust domain " + settings.trustDomain());
    }
    PublicKey key = verifiedKey(csr);
    Duration ttl =
        requested.isZero() || requested.isNegative()
            ? settings.defaultTtl()
            : min(requested, settings.maxTtl());
    GeneralNames sans =
        new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, id.toString()));
    int usage =
        KeyUsage.digitalSignature | (key instanceof RSAPublicKey ? KeyUsage.keyEncipherment : 0);
    return issue(key, new X500Principal(""), true, sans, usage, ttl);
  }

  /**
   * A TLS serving certificate for the control plane's own gRPC server: DNS or IP SANs, EKU
   * serverAuth, {@code ttl} long.
   */
  public List<X509Certificate> issueServing(PublicKey key, List<String> sans, Duration ttl) {
    if (sans.isEmpty()) {
      throw new IllegalArgumentException("a serving certificate needs at least one SAN");
    }
    List<GeneralName> names = new ArrayList<>();
    for (String s : sans) {
      names.add(
          new GeneralName(
              IP_LITERAL.matcher(s).matches() ? GeneralName.iPAddress : GeneralName.dNSName, s));
    }
    X500Principal subject = new X500Principal("O=nodemesh, CN=" + sans.get(0));
    return issue(
        key,
        subject,
        false,
        new GeneralNames(names.toArray(GeneralName[]::new)),
        KeyUsage.digitalSignature,
        ttl);
  }

  private List<X509Certificate> issue(
      PublicKey key,
      X500Principal subject,
      boolean criticalSans,
      GeneralNames sans,
      int keyUsage,
      Duration ttl) {
    X509Certificate issuer = material.certificate();
    Instant now = clock.instant();
    Instant notAfter = now.plus(ttl);
    if (notAfter.isAfter(issuer.getNotAfter().toInstant())) {
      notAfter = issuer.getNotAfter().toInstant();
    }
    try {
      X509v3CertificateBuilder b =
          new JcaX509v3CertificateBuilder(
              issuer, serial(), Date.from(now.minus(BACKDATE)), Date.from(notAfter), subject, key);
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(keyUsage));
      b.addExtension(
          Extension.extendedKeyUsage,
          false,
          new ExtendedKeyUsage(
              new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
      b.addExtension(Extension.subjectAlternativeName, criticalSans, sans);
      b.addExtension(
          Extension.authorityKeyIdentifier, false, extensions.createAuthorityKeyIdentifier(issuer));
      b.addExtension(
          Extension.subjectKeyIdentifier, false, extensions.createSubjectKeyIdentifier(key));
      X509Certificate leaf =
          new JcaX509CertificateConverter().getCertificate(b.build(signer(material.key())));
      List<X509Certificate> chain = new ArrayList<>();
      chain.add(leaf);
      if (!material.isRoot()) {
        chain.add(issuer);
        chain.addAll(material.intermediates());
      }
      return List.copyOf(chain);
    } catch (GeneralSecurityException | CertIOException e) {
      throw new IllegalStateException("signing failed: " + e.getMessage(), e);
    }
  }

  /** The roots every issued chain leads to. */
  public List<X509Certificate> trustBundle() {
    return material.roots();
  }

  /** The certificate whose key signs (the root itself, or the operator's intermediate). */
  public X509Certificate signingCertificate() {
    return material.certificate();
  }

  /** When the earliest root in the trust bundle expires. */
  public Instant rootNotAfter() {
    Instant earliest = Instant.MAX;
    for (X509Certificate r : material.roots()) {
      Instant t = r.getNotAfter().toInstant();
      earliest = t.isBefore(earliest) ? t : earliest;
    }
    return earliest;
  }

  public CaSettings settings() {
    return settings;
  }

  private static PublicKey verifiedKey(PKCS10CertificationRequest csr) throws InvalidCsrException {
    PublicKey key;
    try {
      key = new JcaPKCS10CertificationRequest(csr).getPublicKey();
      if (!csr.isSignatureValid(
          new JcaContentVerifierProviderBuilder().build(csr.getSubjectPublicKeyInfo()))) {
        throw new InvalidCsrException("the CSR's signature does not verify with its key");
      }
    } catch (GeneralSecurityException | OperatorCreationException | PKCSException e) {
      throw new InvalidCsrException("unusable CSR: " + e.getMessage(), e);
    }
    if (key instanceof ECPublicKey ec) {
      int bits = ec.getParams().getCurve().getField().getFieldSize();
      if (bits != 256 && bits != 384) {
        throw new InvalidCsrException("EC keys must be P-256 or P-384, got " + bits + " bits");
      }
    } else if (key instanceof RSAPublicKey rsa) {
      if (rsa.getModulus().bitLength() < 2048) {
        throw new InvalidCsrException("RSA keys must have at least 2048 bits");
      }
    } else {
      throw new InvalidCsrException("unsupported key algorithm " + key.getAlgorithm());
    }
    return key;
  }

  static SigningMaterial newRoot(String trustDomain, Clock clock) throws GeneralSecurityException {
    KeyPair pair = ecKeyPair();
    X500Name subject =
        new X500NameBuilder(BCStyle.INSTANCE)
            .addRDN(BCStyle.O, "nodemesh")
            .addRDN(BCStyle.CN, "nodemesh root CA " + trustDomain)
            .build();
    Instant now = clock.instant();
    try {
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      X509v3CertificateBuilder b =
          new JcaX509v3CertificateBuilder(
              subject,
              serial(),
              Date.from(now.minus(BACKDATE)),
              Date.from(now.plus(ROOT_LIFETIME)),
              subject,
              pair.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
      b.addExtension(
          Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      b.addExtension(
          Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()));
      X509Certificate root =
          new JcaX509CertificateConverter().getCertificate(b.build(signer(pair.getPrivate())));
      return SigningMaterial.root(pair.getPrivate(), root);
    } catch (CertIOException e) {
      throw new GeneralSecurityException(e);
    }
  }

  /** An EC P-256 key pair: the CA's own and the serving certificate's. */
  static KeyPair ecKeyPair() throws GeneralSecurityException {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
    return g.generateKeyPair();
  }

  private static ContentSigner signer(PrivateKey key) throws GeneralSecurityException {
    String alg = key.getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA";
    try {
      return new JcaContentSignerBuilder(alg).build(key);
    } catch (OperatorCreationException e) {
      throw new GeneralSecurityException("no signer for " + alg, e);
    }
  }

  /** 127 random bits: positive, unique in practice (RFC 5280 allows up to 20 octets). */
  private static BigInteger serial() {
    return new BigInteger(127, RANDOM);
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  static void checkKeyMatches(PrivateKey key, X509Certificate cert, String where)
      throws GeneralSecurityException {
    String alg = key.getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA";
    byte[] probe = new byte[32];
    RANDOM.nextBytes(probe);
    Signature s = Signature.getInstance(alg);
    s.initSign(key);
    s.update(probe);
    byte[] sig = s.sign();
    Signature v = Signature.getInstance(alg);
    v.initVerify(cert.getPublicKey());
    v.update(probe);
    if (!v.verify(sig)) {
      throw new GeneralSecurityException(
          where + ": the private key does not match the certificate");
    }
  }

  private static boolean selfSigned(X509Certificate c) {
    if (!c.getSubjectX500Principal().equals(c.getIssuerX500Principal())) {
      return false;
    }
    try {
      c.verify(c.getPublicKey());
      return true;
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  private static void validate(SigningMaterial m, X509Certificate cert, Date at)
      throws GeneralSecurityException {
    List<X509Certificate> path = new ArrayList<>();
    path.add(cert);
    path.addAll(m.intermediates());
    Set<TrustAnchor> anchors = new HashSet<>();
    for (X509Certificate r : m.roots()) {
      anchors.add(new TrustAnchor(r, null));
    }
    PKIXParameters params = new PKIXParameters(anchors);
    params.setRevocationEnabled(false);
    params.setDate(at);
    CertPathValidator.getInstance("PKIX")
        .validate(CertificateFactory.getInstance("X.509").generateCertPath(path), params);
  }

  private static String read(Path file) throws IOException {
    return Files.readString(file, StandardCharsets.US_ASCII);
  }
}
