package dev.nodemesh.model.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;

/**
 * Differential fuzzing of {@link JsonTrees#read} against Jackson's {@code ObjectMapper.readTree}:
 * for any bytes, both build the same tree or both refuse, except where the reader is stricter on
 * purpose (input that is not well-formed UTF-8, which Jackson may decode leniently, or that has a
 * NUL byte among its first four, which Jackson reads as UTF-16 or UTF-32). Nothing but {@link
 * MalformedJsonException} may come out of the reader.
 *
 * <p>Regression mode (every test run) replays {@code
 * src/test/resources/.../JsonTreesFuzzTestInputs}; {@code scripts/fuzz} mutates it.
 */
class JsonTreesFuzzTest {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  @FuzzTest(maxDuration = "30s")
  void readsOrRefusesAsTheMapperDoes(byte[] input) throws Exception {
    JsonNode ours;
    MalformedJsonException refused = null;
    try {
      ours = JsonTrees.read(input);
    } catch (MalformedJsonException e) {
      ours = null;
      refused = e;
    }
    if (!wellFormedUtf8(input) || hasNul(input)) {
      return; // stricter on purpose (see the class comment): only that nothing else escaped
    }
    JsonNode theirs;
    try {
      JsonNode t = MAPPER.readTree(input);
      theirs = t == null || t.isMissingNode() ? null : t;
    } catch (JacksonException e) {
      if (refused == null) {
        throw new AssertionError(
            "Jackson refuses (" + e.getOriginalMessage() + "), JsonTrees reads: " + text(input));
      }
      return;
    }
    if (refused != null) {
      throw new AssertionError(
          "Jackson reads, JsonTrees refuses (" + refused.getMessage() + "): " + text(input),
          refused);
    }
    assertEquals(theirs, ours, text(input));
  }

  /** Jackson reads text with NUL bytes among its first four as UTF-16 or UTF-32. */
  private static boolean hasNul(byte[] input) {
    for (int i = 0; i < Math.min(4, input.length); i++) {
      if (input[i] == 0) {
        return true;
      }
    }
    return false;
  }

  private static boolean wellFormedUtf8(byte[] input) {
    try {
      StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(input));
      return true;
    } catch (java.nio.charset.CharacterCodingException e) {
      return false;
    }
  }

  private static String text(byte[] input) {
    return new String(input, StandardCharsets.UTF_8);
  }
}
