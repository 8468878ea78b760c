package dev.nodemesh.bpf.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A bpffs mounted by the test in a temporary directory (this machine has none at /sys/fs/bpf), for
 * pins that must never outlive the test: close unmounts it, which drops every pin under it.
 */
public final class TestBpffs implements AutoCloseable {
  private final Path mount;

  private TestBpffs(Path mount) {
    this.mount = mount;
  }

  public static TestBpffs mount() throws IOException {
    Path dir = Files.createTempDirectory(TestNetns.runPrefix() + "-bpffs");
    try {
      TestNetns.sh("mount", "-t", "bpf", "bpf", dir.toString());
    } catch (IOException e) {
      Files.delete(dir);
      throw e;
    }
    return new TestBpffs(dir);
  }

  public Path path() {
    return mount;
  }

  @Override
  public void close() throws IOException {
    TestNetns.sh("umount", mount.toString());
    Files.delete(mount);
  }
}
