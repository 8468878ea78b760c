package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What the root tests share: running commands, and finding (and, as a last resort, removing)
 * anything named with a test's prefix, so a failing test still leaves nothing behind.
 */
final class RootFixture {
  private RootFixture() {}

  static Exec.Result sh(String... argv) throws IOException {
    return Exec.run(List.of(argv));
  }

  /** Every netns, root-netns link and /etc/netns dir whose name starts with {@code prefix}. */
  static List<String> leftovers(String prefix) throws IOException {
    List<String> found = new ArrayList<>();
    for (String line : sh("ip", "netns", "list").output().split("\n")) {
      if (line.startsWith(prefix)) {
        found.add("netns " + line.split(" ")[0]);
      }
    }
    for (String line : sh("ip", "-o", "link", "show").output().split("\n")) {
      String[] f = line.split(": ");
      if (f.length > 1 && f[1].startsWith(prefix)) {
        found.add("link " + f[1]);
      }
    }
    if (Files.isDirectory(Path.of("/etc/netns"))) {
      try (Stream<Path> s = Files.list(Path.of("/etc/netns"))) {
        s.filter(p -> p.getFileName().toString().startsWith(prefix))
            .forEach(p -> found.add("dir " + p));
      }
    }
    return found;
  }

  /** Runs {@code down}; then removes by prefix whatever is still there, and reports it. */
  static List<String> tearDown(Path runDir, String prefix) throws IOException {
    LocalDown.run(runDir, new PrintStream(PrintStream.nullOutputStream()));
    List<String> left = leftovers(prefix);
    for (String what : left) {
      String name = what.substring(what.indexOf(' ') + 1);
      if (what.startsWith("netns ")) {
        for (ProcessHandle h : Netns.processes(name)) {
          Daemons.stop(h);
        }
        sh("ip", "netns", "delete", name);
      } else if (what.startsWith("dir ")) {
        sh("rm", "-rf", "--", name);
      }
    }
    return left;
  }

  static void assertNothingLeft(String prefix) throws IOException {
    assertEquals(List.of(), leftovers(prefix));
  }
}
