package dev.nodemesh.proxy.identity;

import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import dev.nodemesh.model.identity.Pem;
import io.grpc.Status;
import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;

/**
 * A test CA behind {@link CertificateSigner}: a root of its own, leaves for the CSR's key with the
 * identity of the named pod's service account, a fixed lifetime, and failures on demand. Records
 * every request.
 */
final class FakeCa implements CertificateSigner {
  private final Clock clock;
  private final Duration lifetime;
  private final Map<String, String> serviceAccounts; // "ns/name" -> sa
  private final KeyPair rootKey;
  private final X509Certificate root;
  final List<CreateCertificateRequest> requests = new ArrayList<>();
  int failNext;
  private long serial = 1;

  FakeCa(Clock clock, Duration lifetime, Map<String, String> serviceAccounts) throws Exception {
    this.clock = clock;
    this.lifetime = lifetime;
    this.serviceAccounts = serviceAccounts;
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    rootKey = g.generateKeyPair();
    X500Principal name = new X500Principal("CN=fake root");
    Instant now = clock.instant();
    X509v3CertificateBuilder b =
        new JcaX509v3CertificateBuilder(
            name,
            BigInteger.ONE,
            Date.from(now.minus(Duration.ofDays(1))),
            Date.from(now.plus(Duration.ofDays(365))),
            name,
            rootKey.getPublic());
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
    root = sign(b);
  }

  X509Certificate root() {
    return root;
  }

  @Override
  public CompletionStage<CreateCertificateResponse> sign(CreateCertificateRequest request) {
    requests.add(request);
    if (failNext > 0) {
      failNext--;
      return CompletableFuture.failedFuture(
          Status.UNAVAILABLE.withDescription("CA away").asException());
    }
    try {
      PKCS10CertificationRequest csr = Pem.csr(request.getCsr());
      String ns = request.getWorkload().getNamespace();
      String sa = serviceAccounts.get(ns + "/" + request.getWorkload().getName());
      Instant now = clock.instant();
      X509v3CertificateBuilder b =
          new JcaX509v3CertificateBuilder(
              root,
              BigInteger.valueOf(++serial),
              Date.from(now.minus(Duration.ofMinutes(1))),
              Date.from(now.plus(lifetime)),
              new X500Principal(""),
              new JcaPKCS10CertificationRequest(csr).getPublicKey());
      b.addExtension(
          Extension.subjectAlternativeName,
          true,
          new GeneralNames(
              new GeneralName(
                  GeneralName.uniformResourceIdentifier,
                  "spiffe://cluster.local/ns/" + ns + "/sa/" + sa)));
      return CompletableFuture.completedFuture(
          CreateCertificateResponse.newBuilder()
              .addCertChain(Pem.encode(sign(b)))
              .addTrustBundle(Pem.encode(root))
              .build());
    } catch (Exception e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  private X509Certificate sign(X509v3CertificateBuilder b) throws Exception {
    return new JcaX509CertificateConverter()
        .getCertificate(
            b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(rootKey.getPrivate())));
  }
}
