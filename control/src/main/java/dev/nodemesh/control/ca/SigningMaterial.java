package dev.nodemesh.control.ca;

import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Objects;

/**
 * The CA's own key and certificates.
 *
 * @param key signs every certificate the CA issues
 * @param certificate the certificate of {@code key} (the root itself when the CA made its own)
 * @param intermediates the certificates between {@code certificate} and the root, nearest first;
 *     empty when {@code certificate} is the root or is signed by it directly
 * @param roots what peers trust: the trust bundle handed out with every certificate
 */
public record SigningMaterial(
    PrivateKey key,
    X509Certificate certificate,
    List<X509Certificate> intermediates,
    List<X509Certificate> roots) {

  public SigningMaterial {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(certificate, "certificate");
    intermediates = List.copyOf(intermediates);
    roots = List.copyOf(roots);
    if (roots.isEmpty()) {
      throw new IllegalArgumentException("no root");
    }
  }

  /** A self-made root: it signs and is trusted. */
  public static SigningMaterial root(PrivateKey key, X509Certificate root) {
    return new SigningMaterial(key, root, List.of(), List.of(root));
  }

  boolean isRoot() {
    return roots.size() == 1 && roots.get(0).equals(certificate);
  }
}
