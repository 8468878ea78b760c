package dev.nodemesh.control.ca;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Local mode's node authentication: a file of {@code <node-name> <token>} lines ({@code #} comments
 * and blank lines allowed), read once at start. {@link #generate} writes such a file (0600) with
 * one random token per node, and one {@code <node>.token} file per node next to it for that node's
 * proxy ({@code nodemesh proxy --bootstrap-token-file}), so local mode can make them in its run
 * directory. Tokens are compared in constant time.
 */
public final class BootstrapTokens implements NodeAuthenticator {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Map<String, byte[]> tokens; // node -> token bytes
  private final String source;

  private BootstrapTokens(Map<String, byte[]> tokens, String source) {
    this.tokens = tokens;
    this.source = source;
  }

  /** Reads a token file; a malformed line or a token used twice is an error naming the line. */
  public static BootstrapTokens load(Path file) throws IOException {
    Map<String, byte[]> tokens = new LinkedHashMap<>();
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String[] parts = line.split("\\s+");
      if (parts.length != 2 || parts[1].length() < 16) {
        throw new IOException(
            file + ":" + (i + 1) + ": expected '<node-name> <token>' with a token of 16+ chars");
      }
      if (!seen.add(parts[1]) || tokens.containsKey(parts[0])) {
        throw new IOException(file + ":" + (i + 1) + ": node or token listed twice");
      }
      tokens.put(parts[0], parts[1].getBytes(StandardCharsets.UTF_8));
    }
    return new BootstrapTokens(tokens, file.toString());
  }

  /**
   * Writes {@code file} with a fresh 256-bit token for each of {@code nodes}, and {@code
   * <node>.token} beside it for each node, all 0600; returns node → token.
   */
  public static Map<String, String> generate(Path file, Collection<String> nodes)
      throws IOException {
    Map<String, String> out = new LinkedHashMap<>();
    StringBuilder text = new StringBuilder("# nodemesh bootstrap tokens: <node-name> <token>\n");
    Path dir = java.util.Objects.requireNonNull(file.toAbsolutePath().getParent(), "parent");
    for (String node : nodes) {
      if (node.isEmpty() || node.chars().anyMatch(Character::isWhitespace) || node.contains("/")) {
        throw new IllegalArgumentException("bad node name '" + node + "'");
      }
      byte[] raw = new byte[32];
      RANDOM.nextBytes(raw);
      String token = Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
      out.put(node, token);
      text.append(node).append(' ').append(token).append('\n');
      writePrivate(dir.resolve(node + ".token"), token + "\n");
    }
    writePrivate(file, text.toString());
    return out;
  }

  private static void writePrivate(Path file, String text) throws IOException {
    Files.deleteIfExists(file);
    Files.createFile(
        file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(file, text, StandardCharsets.UTF_8);
  }

  @Override
  public String nodeOf(String token) throws AuthenticationException {
    byte[] given = token.getBytes(StandardCharsets.UTF_8);
    String found = null;
    for (Map.Entry<String, byte[]> e : tokens.entrySet()) {
      // Every entry is compared, so the time taken does not say which one matched.
      if (MessageDigest.isEqual(e.getValue(), given) && found == null) {
        found = e.getKey();
      }
    }
    if (found == null) {
      throw new AuthenticationException("unknown bootstrap token");
    }
    return found;
  }

  @Override
  public String describe() {
    return "bootstrap tokens from " + source + " (" + tokens.size() + " nodes)";
  }
}
