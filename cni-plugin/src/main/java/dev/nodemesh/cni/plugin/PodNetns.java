package dev.nodemesh.cni.plugin;

import dev.nodemesh.cni.spec.CniError;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Checks that {@code CNI_NETNS} names a pod's network namespace: a network namespace file, and not
 * the one the plugin itself runs in (the host's, where the runtime execs its plugins). Without it,
 * {@code CNI_NETNS=/proc/1/ns/net} would make the node agent put its listeners and redirect rules
 * into the host's namespace.
 *
 * <p>"Another namespace" is decided by device and inode: every namespace file (a {@code
 * /proc/PID/ns/net} link or a bind mount such as {@code /var/run/netns/NAME}) is an inode of the
 * one nsfs device, one inode per namespace. "A network namespace" is decided without native code: a
 * {@code /proc/PID/ns/*} link reads {@code net:[INODE]}, and a bind-mounted one is listed in {@code
 * /proc/self/mountinfo} with root {@code net:[INODE]}. Limit: a bind mount the plugin cannot see in
 * its own mount table (one made in another mount namespace) is refused as "not a network
 * namespace"; runtimes mount pod namespaces where the plugin runs ({@code /var/run/netns}).
 */
public final class PodNetns {
  /** How the plugin checks {@code CNI_NETNS} on ADD; replaced in tests that have no pod netns. */
  @FunctionalInterface
  public interface Check {
    void require(String netnsPath) throws CniError;
  }

  private final Path own;
  private final Path mountinfo;

  PodNetns(Path own, Path mountinfo) {
    this.own = own;
    this.mountinfo = mountinfo;
  }

  /** Against this process's own network namespace and mount table. */
  public static PodNetns standard() {
    return new PodNetns(Path.of("/proc/self/ns/net"), Path.of("/proc/self/mountinfo"));
  }

  /**
   * Identity of a namespace file (nsfs device, inode), following links as stat(2) does: one stat
   * for both (two {@code getAttribute} calls would stat twice).
   */
  record FileId(long dev, long ino) {
    static FileId of(Path p) throws IOException {
      Map<String, Object> a = Files.readAttributes(p, "unix:dev,ino");
      return new FileId(number(a, "dev"), number(a, "ino"));
    }

    private static long number(Map<String, Object> attributes, String name) throws IOException {
      if (attributes.get(name) instanceof Number n) {
        return n.longValue();
      }
      throw new IOException("the file system gave no unix:" + name + " attribute");
    }
  }

  /** Code 4 naming the path and what is wrong with it. */
  public void require(String netnsPath) throws CniError {
    if (!netnsPath.startsWith("/")) {
      throw refused(netnsPath, "is not an absolute path");
    }
    Path p = Path.of(netnsPath);
    FileId host;
    FileId pod;
    try {
      host = FileId.of(own);
    } catch (IOException e) {
      throw new CniError(
          CniError.IO_FAILURE, "cannot read the plugin's own network namespace", e.toString());
    }
    try {
      pod = FileId.of(p);
    } catch (NoSuchFileException e) {
      throw refused(netnsPath, "does not exist");
    } catch (FileSystemException e) {
      // The reason only: the exception's message repeats the (possibly long) path.
      throw refused(
          netnsPath, "cannot be read: " + e.getClass().getSimpleName() + " " + e.getReason());
    } catch (IOException e) {
      throw refused(netnsPath, "cannot be read: " + e.getClass().getSimpleName());
    }
    if (pod.dev() != host.dev()) {
      throw refused(netnsPath, "is not a namespace file");
    }
    if (pod.ino() == host.ino()) {
      throw refused(netnsPath, "is the host's network namespace (the plugin's own), not a pod's");
    }
    String tag = "net:[" + Long.toUnsignedString(pod.ino()) + "]";
    if (!isNetns(p, tag)) {
      throw refused(netnsPath, "is a namespace, but not a network namespace");
    }
  }

  private boolean isNetns(Path p, String tag) throws CniError {
    if (Files.isSymbolicLink(p)) {
      try {
        return Files.readSymbolicLink(p).toString().equals(tag);
      } catch (IOException e) {
        return false;
      }
    }
    Path real;
    List<String> lines;
    try {
      real = p.toRealPath();
      lines = Files.readAllLines(mountinfo, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new CniError(CniError.IO_FAILURE, "cannot read the mount table", e.toString());
    }
    String mountPoint = real.toString();
    for (String line : lines) {
      // mountinfo(5): ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS ... - FSTYPE SOURCE SUPER-OPTIONS
      String[] f = line.split(" ");
      if (f.length > 4 && f[3].equals(tag) && unescape(f[4]).equals(mountPoint)) {
        return true;
      }
    }
    return false;
  }

  /** mountinfo escapes space, tab, newline and backslash as {@code \ooo}. */
  static String unescape(String field) {
    if (field.indexOf('\\') < 0) {
      return field;
    }
    StringBuilder b = new StringBuilder(field.length());
    for (int i = 0; i < field.length(); i++) {
      char c = field.charAt(i);
      if (c == '\\' && isOctal(field, i + 1)) {
        b.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        b.append(c);
      }
    }
    return b.toString();
  }

  private static boolean isOctal(String s, int from) {
    if (from + 3 > s.length()) {
      return false;
    }
    for (int i = from; i < from + 3; i++) {
      if (s.charAt(i) < '0' || s.charAt(i) > '7') {
        return false;
      }
    }
    return true;
  }

  private static CniError refused(String netnsPath, String why) {
    String shown = netnsPath.length() <= 200 ? netnsPath : netnsPath.substring(0, 200) + "...";
    return new CniError(
        CniError.INVALID_ENVIRONMENT,
        "CNI_NETNS is not a pod's network namespace",
        "\"" + shown + "\" " + why);
  }
}
