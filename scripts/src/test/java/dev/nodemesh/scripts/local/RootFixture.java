package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What the root tests share: running commands, and finding (and, as a last resort, removing)
 * anything named with a test's prefix, so a failing test still leaves nothing behind; the options
 * of a test's {@code local up}, its logs for a failure message, and what eBPF mode left pinned and
 * attached.
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

  /**
   * {@code local up} of {@code config} with the node proxies (run {@code proxyArgs}), one node name
   * "local" where the YAML names none, services on 10.96.0.0/16, admin endpoints on free ports
   * (other tests may hold 15020), waiting up to {@code wait} for each step.
   */
  static LocalUp.Options upOptions(
      Path config, Path runDir, String prefix, Duration wait, List<String> proxyArgs) {
    return new LocalUp.Options(
        config,
        runDir,
        true,
        prefix,
        "10.96.0.0/16",
        "local",
        "127.0.0.1:0",
        wait,
        List.of(),
        proxyArgs);
  }

  /** The last {@code lines} lines of every log file in {@code runDir}, each under its path. */
  static String logs(Path runDir, int lines) throws IOException {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> s = Files.list(runDir)) {
      for (Path p : s.filter(f -> f.toString().endsWith(".log")).toList()) {
        sb.append("== ").append(p).append('\n').append(Netns.tail(p, lines)).append('\n');
      }
    }
    return sb.toString();
  }

  /** Every pin under the bpffs mount (files and dirs, the mount itself excluded), sorted. */
  static List<String> pins(Path bpffs) throws IOException {
    try (Stream<Path> s = Files.walk(bpffs)) {
      return s.filter(p -> !p.equals(bpffs))
          .map(p -> bpffs.relativize(p).toString())
          .sorted()
          .toList();
    }
  }

  /** {@code bpftool cgroup tree} on the cgroup: its lines after the two header lines. */
  static List<String> cgroupTree(Path cgroup) throws IOException {
    Exec.Result r = sh("bpftool", "cgroup", "tree", cgroup.toString());
    assertTrue(r.ok(), r.output());
    return r.output()
        .lines()
        .filter(l -> !l.isBlank())
        .filter(l -> !l.startsWith("CgroupPath") && !l.startsWith("ID "))
        .toList();
  }

  static void assertNothingLeft(String prefix) throws IOException {
    assertEquals(List.of(), leftovers(prefix));
  }
}
