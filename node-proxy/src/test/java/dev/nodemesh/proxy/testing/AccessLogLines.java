package dev.nodemesh.proxy.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the proxy's JSON access log as a test sees it. The writer is asynchronous, so both waits
 * poll (bounded) and count only complete lines (a line still being written is left for the next
 * poll).
 */
public final class AccessLogLines {
  private static final ObjectMapper JSON = new ObjectMapper();

  private AccessLogLines() {}

  /**
   * Waits up to 30 s until at least {@code n} HTTP lines (with http_status) are in {@code file}.
   */
  public static List<JsonNode> awaitAtLeast(Path file, int n) throws Exception {
    List<JsonNode> lines = poll(file, n, true, Duration.ofSeconds(30));
    if (lines.size() < n) {
      throw new AssertionError("only " + lines.size() + " access-log lines of " + n);
    }
    return lines;
  }

  /**
   * Waits up to 20 s until {@code n} lines ({@code httpOnly}: only those with http_status) are in
   * {@code file}, and asserts there are exactly {@code n}.
   */
  public static List<JsonNode> awaitExactly(Path file, boolean httpOnly, int n) throws Exception {
    List<JsonNode> lines = poll(file, n, httpOnly, Duration.ofSeconds(20));
    if (lines.size() < n) {
      throw new AssertionError("expected " + n + " access log lines, got " + lines);
    }
    assertEquals(n, lines.size(), lines.toString());
    return lines;
  }

  private static List<JsonNode> poll(Path file, int n, boolean httpOnly, Duration limit)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + limit.toNanos();
    List<JsonNode> lines = read(file, httpOnly);
    while (lines.size() < n && System.nanoTime() < deadline) {
      Thread.sleep(50);
      lines = read(file, httpOnly);
    }
    return lines;
  }

  private static List<JsonNode> read(Path file, boolean httpOnly) throws IOException {
    List<JsonNode> lines = new ArrayList<>();
    if (!Files.exists(file)) {
      return lines;
    }
    String text = Files.readString(file);
    for (String line : text.split("\n")) {
      if (!line.isBlank() && text.contains(line + "\n")) {
        JsonNode j = JSON.readTree(line);
        if (!httpOnly || j.has("http_status")) {
          lines.add(j);
        }
      }
    }
    return lines;
  }
}
