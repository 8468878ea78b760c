package dev.nodemesh.control.ca;

import dev.nodemesh.model.identity.Pem;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import java.util.List;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;

/** The two PEM texts a stored root is kept as, shared by the directory and the Secret store. */
final class StoredRoots {
  static final String CERT = "ca.crt";
  static final String KEY = "ca.key";

  private StoredRoots() {}

  static String certPem(SigningMaterial m) {
    return Pem.encode(m.certificate());
  }

  static String keyPem(SigningMaterial m) {
    try {
      return Pem.encode(new JcaPKCS8Generator(m.key(), null));
    } catch (org.bouncycastle.util.io.pem.PemGenerationException e) {
      throw new IllegalStateException("the CA key cannot be encoded as PKCS#8", e);
    }
  }

  static SigningMaterial parse(String certPem, String keyPem, String where)
      throws IOException, GeneralSecurityException {
    List<X509Certificate> certs = Pem.certificates(certPem);
    if (certs.size() != 1) {
      throw new GeneralSecurityException(
          where + ": expected one certificate, found " + certs.size());
    }
    SigningMaterial m = SigningMaterial.root(Pem.privateKey(keyPem), certs.get(0));
    CertificateAuthority.checkKeyMatches(m.key(), m.certificate(), where);
    return m;
  }
}
