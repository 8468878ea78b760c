package dev.nodemesh.model.identity;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;

/**
 * PEM in and out (Bouncy Castle's parser and writer), shared by the CA and the node proxy so both
 * ends read one format. Certificates come back as the JDK's own {@link X509Certificate} so they
 * work with {@code CertPathValidator}, {@code SSLContext} and Netty unchanged.
 */
public final class Pem {
  private Pem() {}

  /** One PEM block per object, in order. */
  public static String encode(Object... objects) {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter w = new JcaPEMWriter(out)) {
      for (Object o : objects) {
        w.writeObject(o);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString();
  }

  /** Every CERTIFICATE block in {@code pem}, in order; anything else is an error. */
  public static List<X509Certificate> certificates(String pem) throws CertificateException {
    List<X509Certificate> certs = new ArrayList<>();
    JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
    try (PEMParser p = new PEMParser(new StringReader(pem))) {
      for (Object o = p.readObject(); o != null; o = p.readObject()) {
        if (!(o instanceof X509CertificateHolder h)) {
          throw new CertificateException("expected CERTIFICATE, found " + o.getClass().getName());
        }
        certs.add(converter.getCertificate(h));
      }
    } catch (IOException e) {
      throw new CertificateException("unreadable PEM: " + e.getMessage(), e);
    }
    return certs;
  }

  /** The single private key (PKCS#8, or a traditional EC/RSA key pair block) in {@code pem}. */
  public static PrivateKey privateKey(String pem) throws IOException {
    try (PEMParser p = new PEMParser(new StringReader(pem))) {
      Object o = p.readObject();
      JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
      if (o instanceof PrivateKeyInfo info) {
        return converter.getPrivateKey(info);
      }
      if (o instanceof PEMKeyPair pair) {
        return converter.getKeyPair(pair).getPrivate();
      }
      throw new IOException(
          "expected an unencrypted PRIVATE KEY, found " + (o == null ? "nothing" : o.getClass()));
    }
  }

  /** The single CERTIFICATE REQUEST (PKCS#10) in {@code pem}. */
  public static PKCS10CertificationRequest csr(String pem) throws IOException {
    try (PEMParser p = new PEMParser(new StringReader(pem))) {
      Object o = p.readObject();
      if (o instanceof PKCS10CertificationRequest csr) {
        return csr;
      }
      throw new IOException(
          "expected a CERTIFICATE REQUEST, found " + (o == null ? "nothing" : o.getClass()));
    }
  }
}
