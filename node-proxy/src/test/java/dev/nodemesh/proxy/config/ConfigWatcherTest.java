package dev.nodemesh.proxy.config;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigException;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The watcher against a real directory. Waits are generous caps on a blocking poll, never
 * assertions on how long something took: CI machines stall.
 */
class ConfigWatcherTest {
  private static final long WAIT_SECONDS = 10;

  @TempDir Path dir;

  private final BlockingQueue<ConfigSnapshot> snapshots = new LinkedBlockingQueue<>();
  private final BlockingQueue<ConfigException> errors = new LinkedBlockingQueue<>();

  @Test
  void deliversChangesRejectsBadEditsAndPicksUpTheFix() throws Exception {
    write(dir, "pods.yaml", pod("default", "a", "10.0.0.1", "{app: a}", "[]"));
    try (ConfigWatcher watcher = ConfigWatcher.start(dir, snapshots::add, errors::add)) {
      ConfigSnapshot first = next(snapshots);
      assertEquals(1, first.version());
      assertEquals(first, watcher.current());

      write(
          dir,
          "pods.yaml",
          docs(
              pod("default", "a", "10.0.0.1", "{app: a}", "[]"),
              pod("default", "b", "10.0.0.2", "{app: a}", "[]")));
      ConfigSnapshot second = next(snapshots);
      assertEquals(2, second.version());
      assertEquals(List.of("a", "b"), names(second));

      write(dir, "broken.yaml", pod("default", "c", "10.0.0.x", "{app: a}", "[]"));
      ConfigException rejected = next(errors);
      assertTrue(
          rejected.getMessage().contains("broken.yaml: Pod default/c"), rejected.getMessage());
      assertEquals(2, watcher.current().version());

      write(dir, "broken.yaml", pod("default", "c", "10.0.0.3", "{app: a}", "[]"));
      ConfigSnapshot third = next(snapshots);
      // Nothing was delivered for the rejected edit: the fix is the very next snapshot.
      assertEquals(3, third.version());
      assertEquals(List.of("a", "b", "c"), names(third));
      assertEquals(third, watcher.current());
      assertTrue(errors.isEmpty());
    }
  }

  @Test
  void seesAFileRenamedIntoPlace() throws Exception {
    write(dir, "pods.yaml", pod("default", "a", "10.0.0.1", "{app: a}", "[]"));
    try (ConfigWatcher watcher = ConfigWatcher.start(dir, snapshots::add, errors::add)) {
      next(snapshots);
      // How many editors and kubectl-style tools save: write a temp file, rename it over.
      Path tmp = write(dir, ".pods.yaml.tmp", pod("default", "z", "10.0.0.9", "{app: a}", "[]"));
      Files.move(tmp, dir.resolve("pods.yaml"), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      assertEquals(List.of("z"), names(next(snapshots)));
    }
  }

  @Test
  void anInvalidDirectoryAtStartThrows() {
    write(dir, "pods.yaml", "kind: Pod\nmetadata: {name: a}\n");
    ConfigException e =
        assertThrows(
            ConfigException.class, () -> ConfigWatcher.start(dir, snapshots::add, errors::add));
    assertTrue(e.getMessage().contains("pods.yaml: Pod default/a: status.podIP"), e.getMessage());
    assertTrue(snapshots.isEmpty());
  }

  private static <T> T next(BlockingQueue<T> queue) throws InterruptedException {
    T value = queue.poll(WAIT_SECONDS, TimeUnit.SECONDS);
    assertNotNull(value, "nothing delivered within " + WAIT_SECONDS + " s");
    return value;
  }

  private static List<String> names(ConfigSnapshot snap) {
    return snap.workloads().stream().map(Workload::name).toList();
  }
}
