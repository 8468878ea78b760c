package dev.nodemesh.control.ca;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import org.jspecify.annotations.Nullable;

/**
 * A root kept in a directory: {@code ca.crt} (0644) and {@code ca.key} (0600, the directory 0700).
 * Local mode's home for the CA. The key is written before the certificate, and each file is written
 * under a temporary name and then moved into place, so a crash leaves either no root or a whole one
 * (a lone key without its certificate is replaced on the next start).
 */
public final class DirectoryRootStore implements RootStore {
  private final Path dir;

  public DirectoryRootStore(Path dir) {
    this.dir = dir;
  }

  @Override
  public @Nullable SigningMaterial load() throws IOException, GeneralSecurityException {
    Path cert = dir.resolve(StoredRoots.CERT);
    Path key = dir.resolve(StoredRoots.KEY);
    if (!Files.exists(cert)) {
      return null;
    }
    return StoredRoots.parse(
        Files.readString(cert, StandardCharsets.US_ASCII),
        Files.readString(key, StandardCharsets.US_ASCII),
        dir.toString());
  }

  @Override
  public SigningMaterial storeIfAbsent(SigningMaterial made)
      throws IOException, GeneralSecurityException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(
          dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }
    write(StoredRoots.KEY, StoredRoots.keyPem(made), "rw-------");
    try {
      write(StoredRoots.CERT, StoredRoots.certPem(made), "rw-r--r--");
    } catch (FileAlreadyExistsException e) {
      SigningMaterial there = load();
      if (there != null) {
        return there;
      }
      throw e;
    }
    return made;
  }

  private void write(String name, String text, String perms) throws IOException {
    Path tmp =
        Files.createTempFile(
            dir,
            "." + name,
            ".tmp",
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(perms)));
    try {
      Files.writeString(tmp, text, StandardCharsets.US_ASCII);
      if (name.equals(StoredRoots.CERT)) {
        // No REPLACE_EXISTING: a certificate that appeared meanwhile wins.
        Files.move(tmp, dir.resolve(name));
      } else {
        Files.move(tmp, dir.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  @Override
  public String describe() {
    return "directory " + dir;
  }
}
