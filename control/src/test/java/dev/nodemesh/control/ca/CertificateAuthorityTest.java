package dev.nodemesh.control.ca;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.model.identity.SpiffeId;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.cert.CertPathValidatorException;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Collection;
import java.util.List;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CertificateAuthorityTest {
  private static final Instant NOW = Instant.parse("2026-11-22T12:00:00Z");
  private static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
  private static final SpiffeId ID = new SpiffeId("cluster.local", "shop", "checkout");

  @TempDir Path dir;

  private CertificateAuthority ca(Duration ttl) throws Exception {
    return CertificateAuthority.loadOrCreate(
        new DirectoryRootStore(dir.resolve("ca")), CaSettings.of("cluster.local", ttl), CLOCK);
  }

  @Test
  void leafCarriesOnlyTheGivenSpiffeIdAndTheRightExtensions() throws Exception {
    CertificateAuthority ca = ca(Duration.ofHours(24));
    KeyPair pair = TestCerts.ec();
    // The CSR claims to be someone else: only its key may be used.
    List<X509Certificate> chain =
        ca.sign(
            TestCerts.csr(pair, "CN=spiffe://cluster.local/ns/kube-system/sa/admin"),
            ID,
            Duration.ZERO);

    assertEquals(1, chain.size(), "signed directly by the root");
    X509Certificate leaf = chain.get(0);
    assertEquals(pair.getPublic(), leaf.getPublicKey());
    Collection<List<?>> sans = leaf.getSubjectAlternativeNames();
    assertEquals(
        List.of(List.of(6, "spiffe://cluster.local/ns/shop/sa/checkout")), List.copyOf(sans));
    assertTrue(
        leaf.getCriticalExtensionOIDs().contains("2.5.29.17"), "SAN critical: empty subject");
    assertEquals(new X500Principal(""), leaf.getSubjectX500Principal());
    assertEquals(-1, leaf.getBasicConstraints(), "not a CA");
    boolean[] ku = leaf.getKeyUsage();
    assertTrue(ku[0], "digitalSignature");
    assertFalse(ku[2], "no keyEncipherment for an EC key");
    assertFalse(ku[5], "no keyCertSign");
    assertEquals(
        List.of("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"), leaf.getExtendedKeyUsage(), "EKU");
    TestCerts.validate(chain, ca.trustBundle(), NOW);
  }

  @Test
  void lifetimeIsTheDefaultOrTheRequestCutToTheMaximum() throws Exception {
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")),
            new CaSettings("cluster.local", Duration.ofHours(24), Duration.ofHours(48)),
            CLOCK);
    KeyPair pair = TestCerts.ec();
    X509Certificate byDefault = ca.sign(TestCerts.csr(pair, ""), ID, Duration.ZERO).get(0);
    X509Certificate shortOne = ca.sign(TestCerts.csr(pair, ""), ID, Duration.ofMinutes(2)).get(0);
    X509Certificate capped = ca.sign(TestCerts.csr(pair, ""), ID, Duration.ofDays(30)).get(0);

    assertEquals(NOW.plus(Duration.ofHours(24)), byDefault.getNotAfter().toInstant());
    assertEquals(NOW.minus(CertificateAuthority.BACKDATE), byDefault.getNotBefore().toInstant());
    assertEquals(NOW.plus(Duration.ofMinutes(2)), shortOne.getNotAfter().toInstant());
    assertEquals(NOW.plus(Duration.ofHours(48)), capped.getNotAfter().toInstant());
    assertNotEquals(byDefault.getSerialNumber(), shortOne.getSerialNumber());
  }

  @Test
  void aCsrWhoseSignatureDoesNotVerifyIsRefused() throws Exception {
    CertificateAuthority ca = ca(Duration.ofHours(1));
    KeyPair victim = TestCerts.ec();
    InvalidCsrException e =
        assertThrows(
            InvalidCsrException.class,
            () -> ca.sign(TestCerts.forgedCsr(victim.getPublic()), ID, Duration.ZERO));
    assertTrue(e.getMessage().contains("signature"), e.getMessage());
  }

  @Test
  void aPersistedRootIsReusedAfterARestartAndItsKeyIsPrivate() throws Exception {
    CertificateAuthority first = ca(Duration.ofHours(1));
    CertificateAuthority second = ca(Duration.ofHours(1)); // a restarted control plane
    assertEquals(first.signingCertificate(), second.signingCertificate());
    X509Certificate leaf = second.sign(TestCerts.csr(TestCerts.ec(), ""), ID, Duration.ZERO).get(0);
    TestCerts.validate(List.of(leaf), first.trustBundle(), NOW);
    assertEquals(
        "rw-------",
        PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("ca/ca.key"))));
    assertEquals(
        "rwx------",
        PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("ca"))));
    assertEquals(NOW.plus(CertificateAuthority.ROOT_LIFETIME), first.rootNotAfter());
  }

  @Test
  void aSuppliedIntermediateChainsToTheOperatorsRoot() throws Exception {
    KeyPair rootKey = TestCerts.ec();
    X500Principal rootName = new X500Principal("O=operator, CN=operator root");
    X509Certificate root =
        TestCerts.caCert(rootName, rootKey.getPrivate(), rootName, rootKey.getPublic(), NOW);
    KeyPair interKey = TestCerts.ec();
    X509Certificate inter =
        TestCerts.caCert(
            rootName,
            rootKey.getPrivate(),
            new X500Principal("O=operator, CN=mesh intermediate"),
            interKey.getPublic(),
            NOW);
    Path cert = write("inter.crt", Pem.encode(inter));
    Path key = write("inter.key", Pem.encode(new JcaPKCS8Generator(interKey.getPrivate(), null)));
    Path chainFile = write("chain.pem", Pem.encode(root));

    CertificateAuthority ca =
        CertificateAuthority.fromFiles(cert, key, chainFile, CaSettings.defaults(), CLOCK);
    List<X509Certificate> chain = ca.sign(TestCerts.csr(TestCerts.ec(), ""), ID, Duration.ZERO);

    assertEquals(List.of(inter), chain.subList(1, chain.size()), "leaf, then the intermediate");
    assertEquals(List.of(root), ca.trustBundle());
    TestCerts.validate(chain, List.of(root), NOW);
    // Not to a root of its own making:
    CertificateAuthority own = ca(Duration.ofHours(1));
    assertThrows(
        CertPathValidatorException.class, () -> TestCerts.validate(chain, own.trustBundle(), NOW));
  }

  @Test
  void aSuppliedIntermediateWithTheWrongKeyOrNoRootIsRefused() throws Exception {
    KeyPair rootKey = TestCerts.ec();
    X500Principal rootName = new X500Principal("CN=operator root");
    X509Certificate root =
        TestCerts.caCert(rootName, rootKey.getPrivate(), rootName, rootKey.getPublic(), NOW);
    KeyPair interKey = TestCerts.ec();
    X509Certificate inter =
        TestCerts.caCert(
            rootName, rootKey.getPrivate(), new X500Principal("CN=i"), interKey.getPublic(), NOW);
    Path cert = write("inter.crt", Pem.encode(inter));
    Path wrongKey =
        write("wrong.key", Pem.encode(new JcaPKCS8Generator(TestCerts.ec().getPrivate(), null)));
    Path chainFile = write("chain.pem", Pem.encode(root));
    GeneralSecurityException e =
        assertThrows(
            GeneralSecurityException.class,
            () ->
                CertificateAuthority.fromFiles(
                    cert, wrongKey, chainFile, CaSettings.defaults(), CLOCK));
    assertTrue(e.getMessage().contains("does not match"), e.getMessage());

    Path key = write("inter.key", Pem.encode(new JcaPKCS8Generator(interKey.getPrivate(), null)));
    Path noRoot = write("noroot.pem", Pem.encode(inter));
    assertThrows(
        GeneralSecurityException.class,
        () -> CertificateAuthority.fromFiles(cert, key, noRoot, CaSettings.defaults(), CLOCK));
  }

  @Test
  void servingCertificateHasDnsAndIpSans() throws Exception {
    CertificateAuthority ca = ca(Duration.ofHours(1));
    KeyPair pair = TestCerts.ec();
    X509Certificate c =
        ca.issueServing(
                pair.getPublic(), List.of("nodemesh-control", "127.0.0.1"), Duration.ofHours(1))
            .get(0);
    assertEquals(
        List.of(List.of(2, "nodemesh-control"), List.of(7, "127.0.0.1")),
        List.copyOf(c.getSubjectAlternativeNames()));
    TestCerts.validate(List.of(c), ca.trustBundle(), NOW);
    assertArrayEquals(pair.getPublic().getEncoded(), c.getPublicKey().getEncoded());
  }

  private Path write(String name, String text) throws Exception {
    Path p = dir.resolve(name);
    Files.writeString(p, text, StandardCharsets.US_ASCII);
    return p;
  }
}
