package dev.nodemesh.control.ca;

import java.io.IOException;
import java.security.GeneralSecurityException;
import org.jspecify.annotations.Nullable;

/**
 * Where a CA-made root (certificate and private key) lives between runs, so a restarted control
 * plane keeps signing under the root every node already trusts.
 */
public interface RootStore {

  /** The stored root, or null when none has been stored yet. */
  @Nullable SigningMaterial load() throws IOException, GeneralSecurityException;

  /**
   * Stores {@code made} unless a root is already there (another replica was quicker), and returns
   * the root that is stored now.
   */
  SigningMaterial storeIfAbsent(SigningMaterial made) throws IOException, GeneralSecurityException;

  /** For logs: where the root lives. */
  String describe();
}
