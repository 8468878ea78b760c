package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.nodemesh.model.load.ConfigLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzzes the YAML config loader the way the node proxy and the control plane's local source use it:
 * a whole-directory {@link ConfigLoader#load} of a directory holding one file, whose bytes are the
 * input. Every input must give either a snapshot or a {@link ConfigException} whose every reason is
 * non-blank; any other exception escaping {@code load} is a finding (a bad config directory must
 * never crash a reload), and so is an input that does not finish within {@code scripts/fuzz}'s hang
 * limit (libFuzzer's {@code -timeout}, 20 s).
 *
 * <p>Regression mode (every test run) replays {@code src/test/resources/.../
 * ConfigLoaderFuzzTestInputs/loadsOrRejectsWithAReason}: YAML written for this test (Pods,
 * Services, routes, policies, and a few broken ones). {@code scripts/fuzz} mutates it.
 */
class ConfigLoaderFuzzTest {
  private static Path dir;
  private static Path file;

  @BeforeAll
  static void setUp() throws Exception {
    dir = Files.createTempDirectory("nodemesh-config-fuzz");
    file = dir.resolve("fuzz.yaml");
  }

  @AfterAll
  static void tearDown() throws Exception {
    Files.deleteIfExists(file);
    Files.deleteIfExists(dir);
  }

  @FuzzTest(maxDuration = "30s")
  void loadsOrRejectsWithAReason(FuzzedDataProvider data) throws Exception {
    Files.write(file, data.consumeRemainingAsBytes());
    ConfigSnapshot snapshot;
    try {
      snapshot = ConfigLoader.load(dir);
    } catch (ConfigException e) {
      assertFalse(e.errors().isEmpty());
      for (String reason : e.errors()) {
        assertFalse(reason.isBlank(), "a rejection without a reason: " + e.errors());
      }
      return;
    }
    assertNotNull(snapshot);
  }
}
