package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StateFileTest {
  @Test
  void everyChangeIsOnDiskAtOnce(@TempDir Path run) throws IOException {
    StateFile s = StateFile.create(run, "nm1a2b", Path.of("/cfg"), true);
    Resource pending = Resource.pendingProcess("app:echo-1", "nm1a2b-echo-1");
    s.add(Resource.netns("nm1a2b-node"));
    s.add(pending);
    Resource running =
        new Resource(StateFile.Kind.process, "app:echo-1", "nm1a2b-echo-1", 42, 1234L);
    s.update(pending, running);

    StateFile read = StateFile.load(run);
    assertEquals(List.of(Resource.netns("nm1a2b-node"), running), read.state().resources());
    assertEquals("nm1a2b", read.state().prefix());

    read.remove(running);
    assertEquals(List.of(Resource.netns("nm1a2b-node")), StateFile.load(run).state().resources());
  }

  @Test
  void aSecondUpInTheSameRunDirIsRefused(@TempDir Path run) throws IOException {
    StateFile.create(run, "nm1a2b", Path.of("/cfg"), false);
    assertThrows(IOException.class, () -> StateFile.create(run, "nm3c4d", Path.of("/cfg"), false));
  }

  @Test
  void noFileMeansNothingRecorded(@TempDir Path run) throws IOException {
    assertNull(StateFile.load(run));
  }
}
