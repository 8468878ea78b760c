package dev.nodemesh.model.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.model.cni.MalformedJsonException.JsonLimitException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * JsonTrees reads and writes exactly as an ObjectMapper with its defaults does (its reader is not
 * Jackson's: see {@link JsonTreeReader}), and refuses what the mapper refuses.
 */
class JsonTreesTest {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private static final List<String> DOCUMENTS =
      List.of(
          "{}",
          "[]",
          "\"text\"",
          "42",
          "true",
          "null",
          """
          {"cniVersion": "1.1.0", "name": "k8s-pod-network", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "mtu": 1450,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}},
            {"type": "nodemesh", "runDir": "/var/run/nodemesh/cni", "timeout": 2.5, "x": null}],
           "prevResult": {"ips": [{"address": "10.244.1.5/24", "gateway": "10.244.1.1"}],
                          "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/p\\u00e9d"}]}}
          """,
          "{\"int\": 2147483647, \"long\": 2147483648, \"neg\": -9223372036854775808,"
              + " \"big\": 123456789012345678901234567890, \"double\": 1.5e300, \"small\": -0.0}",
          "{\"escapes\": \"quote \\\" backslash \\\\ tab \\t newline \\n \\u0001 \\ud83d\\ude00\"}",
          "{\"same\": 1, \"same\": 2}",
          "{\"first\": 1} {\"second\": 2}",
          "true]",
          "null $",
          "[1, [2, [3, [4, {}]]], \"\"]");

  @Test
  void readsTheSameTreeAsObjectMapper() throws IOException {
    for (String doc : DOCUMENTS) {
      assertEquals(MAPPER.readTree(doc), JsonTrees.read(doc), doc);
    }
  }

  @Test
  void writesTheSameTextAsObjectMapper() throws IOException {
    for (String doc : DOCUMENTS) {
      JsonNode tree = MAPPER.readTree(doc);
      assertEquals(MAPPER.writeValueAsString(tree), JsonTrees.write(tree), doc);
      assertEquals(
          MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(tree),
          JsonTrees.writePretty(tree),
          doc);
      assertEquals(
          new String(MAPPER.writeValueAsBytes(tree), "UTF-8"),
          new String(JsonTrees.bytes(tree), "UTF-8"),
          doc);
    }
  }

  @Test
  void emptyInputIsNoValue() throws IOException {
    assertNull(JsonTrees.read(""));
    assertNull(JsonTrees.read("  \n"));
  }

  /** What Jackson's defaults refuse, each with the reason and where it is. */
  @Test
  void malformedJsonIsRefusedWithAReason() {
    List<String> bad =
        List.of(
            "{",
            "{\"a\": }",
            "[1,]",
            "{\"a\": 1,}",
            "{\"a\" 1}",
            "nul",
            "\"open",
            "{'a': 1}",
            "{a: 1}",
            "[01]",
            "[1.]",
            "[.5]",
            "[-]",
            "[1e]",
            "[+1]",
            "[NaN]",
            "[\"tab\there\"]",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "// comment\n{}",
            "[1 2]",
            "123abc",
            "truex",
            "false\u20ac",
            "{\"\\ud800 lone\": 1}",
            "\u0001{}");
    for (String doc : bad) {
      MalformedJsonException e =
          assertThrows(MalformedJsonException.class, () -> JsonTrees.read(doc), doc);
      assertTrue(e.getMessage().contains("at line 1, column "), e.getMessage());
      assertThrows(
          JacksonException.class, () -> MAPPER.readTree(bytes(doc)), "Jackson too: " + doc);
    }
    MalformedJsonException e =
        assertThrows(
            MalformedJsonException.class, () -> JsonTrees.read("{\n  \"a\": 1\n  \"b\": 2}"));
    assertEquals(
        "expected ',' or '}' in an object, found '\"' at line 3, column 3", e.getMessage());
  }

  /** Stricter than Jackson on purpose: only UTF-8, and only well-formed UTF-8. */
  @Test
  void onlyWellFormedUtf8IsJson() throws IOException {
    byte[] utf16 = "{\"a\": 1}".getBytes(StandardCharsets.UTF_16BE);
    assertThrows(MalformedJsonException.class, () -> JsonTrees.read(utf16));
    for (byte[] bad :
        List.of(
            new byte[] {'"', (byte) 0xc0, (byte) 0xaf, '"'}, // overlong '/'
            new byte[] {'"', (byte) 0xed, (byte) 0xa0, (byte) 0x80, '"'}, // a surrogate
            new byte[] {'"', (byte) 0xe2, (byte) 0x82, '"'}, // cut short
            new byte[] {'"', (byte) 0xff, '"'},
            new byte[] {'"', (byte) 0xf4, (byte) 0x90, (byte) 0x80, (byte) 0x80, '"'})) {
      MalformedJsonException e =
          assertThrows(MalformedJsonException.class, () -> JsonTrees.read(bad));
      assertTrue(e.getMessage().startsWith("invalid UTF-8"), e.getMessage());
    }
    byte[] bom = {(byte) 0xef, (byte) 0xbb, (byte) 0xbf, '[', '1', ']'};
    assertEquals(MAPPER.readTree(bom), JsonTrees.read(bom));
  }

  @Test
  void theLimitsHoldWhileReading() throws IOException {
    JsonTrees.Limits strict = new JsonTrees.Limits(3, 4, 8, 2);
    assertEquals(MAPPER.readTree("[[[1]]]"), JsonTrees.read(bytes("[[[1]]]"), strict));
    assertThrows(JsonLimitException.class, () -> JsonTrees.read(bytes("[[[[1]]]]"), strict));
    assertThrows(
        JsonLimitException.class, () -> JsonTrees.read(bytes("[{\"a\":{\"b\":[]}}]"), strict));
    assertEquals(MAPPER.readTree("[-1234, 1.25]"), JsonTrees.read(bytes("[-1234, 1.25]"), strict));
    assertThrows(JsonLimitException.class, () -> JsonTrees.read(bytes("[12345]"), strict));
    assertThrows(JsonLimitException.class, () -> JsonTrees.read(bytes("[1.2e100]"), strict));
    assertEquals(
        MAPPER.readTree("{\"ab\": \"01234567\"}"),
        JsonTrees.read(bytes("{\"ab\": \"01234567\"}"), strict));
    assertThrows(
        JsonLimitException.class, () -> JsonTrees.read(bytes("{\"a\": \"012345678\"}"), strict));
    assertThrows(
        JsonLimitException.class,
        () -> JsonTrees.read(bytes("{\"a\": \"\\u00e901234567\"}"), strict));
    assertThrows(JsonLimitException.class, () -> JsonTrees.read(bytes("{\"abc\": 1}"), strict));
    // Jackson's own defaults hold without limits given: 1000 levels, 1000 digits.
    assertThrows(
        JsonLimitException.class, () -> JsonTrees.read("[".repeat(1001) + "]".repeat(1001)));
    assertEquals(
        MAPPER.readTree("[".repeat(1000) + "]".repeat(1000)),
        JsonTrees.read("[".repeat(1000) + "]".repeat(1000)));
    assertThrows(JsonLimitException.class, () -> JsonTrees.read("1".repeat(1001)));
  }

  /**
   * Differential: random documents, and random damage to them, read by this reader and by the
   * mapper: both build the same tree or both refuse. Seeded, so a failure repeats.
   */
  @Test
  void readsOrRefusesAsTheMapperDoesOnRandomDocuments() throws IOException {
    Random random = new Random(19);
    int refused = 0;
    for (int i = 0; i < 20_000; i++) {
      ByteArrayOutputStream doc = new ByteArrayOutputStream();
      value(random, doc, 0);
      byte[] text = doc.toByteArray();
      if (i % 2 == 1) {
        text = damage(random, text);
      }
      JsonNode expected;
      try {
        JsonNode t = MAPPER.readTree(text);
        expected = t == null || t.isMissingNode() ? null : t;
      } catch (JacksonException e) {
        try {
          JsonTrees.read(text);
          fail("Jackson refuses, JsonTrees reads: " + new String(text, StandardCharsets.UTF_8));
        } catch (MalformedJsonException agreed) {
          refused++;
        }
        continue;
      }
      JsonNode actual;
      try {
        actual = JsonTrees.read(text);
      } catch (MalformedJsonException e) {
        throw new AssertionError(
            "Jackson reads, JsonTrees refuses ("
                + e.getMessage()
                + "): "
                + new String(text, StandardCharsets.UTF_8),
            e);
      }
      assertEquals(expected, actual, new String(text, StandardCharsets.UTF_8));
    }
    assertTrue(refused > 2_000, "the damage makes enough bad documents: " + refused);
  }

  private static final String[] STRINGS = {
    "",
    "eth0",
    "caf\u00e9",
    "tab\\t",
    "q\\\"",
    "\\u00e9\\ud83d\\ude00",
    "\u00e9\u4e2d\ud83d\ude00",
    "\\/\\b\\f\\n\\r",
    "\\ud800 lone"
  };
  private static final String[] NUMBERS = {
    "0",
    "-0",
    "7",
    "-12",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1.5",
    "-0.0",
    "1e3",
    "1E+3",
    "2.5e-3",
    "1e400",
    "0.1"
  };

  private static void value(Random r, ByteArrayOutputStream out, int depth) {
    int kind = r.nextInt(depth > 4 ? 4 : 6);
    switch (kind) {
      case 0 -> out.writeBytes(bytes("\"" + STRINGS[r.nextInt(STRINGS.length)] + "\""));
      case 1 -> out.writeBytes(bytes(NUMBERS[r.nextInt(NUMBERS.length)]));
      case 2 -> out.writeBytes(bytes(List.of("true", "false", "null").get(r.nextInt(3))));
      case 3 -> out.writeBytes(bytes(r.nextBoolean() ? "{}" : "[]"));
      case 4 -> {
        out.write('{');
        int n = r.nextInt(4);
        for (int i = 0; i < n; i++) {
          if (i > 0) {
            out.write(',');
          }
          out.writeBytes(bytes(r.nextInt(3) == 0 ? " \n" : ""));
          out.writeBytes(bytes("\"" + STRINGS[r.nextInt(STRINGS.length)] + "\":"));
          value(r, out, depth + 1);
        }
        out.write('}');
      }
      default -> {
        out.write('[');
        int n = r.nextInt(4);
        for (int i = 0; i < n; i++) {
          if (i > 0) {
            out.writeBytes(bytes(r.nextBoolean() ? ", " : ","));
          }
          value(r, out, depth + 1);
        }
        out.write(']');
      }
    }
  }

  private static final byte[] NOISE = bytes("{}[]:,\"\\ -+.0123456789eEtrufalsn\t\n\r\u0001x/'#_$");

  /** One to three edits, at and of ASCII bytes only, so the UTF-8 stays well-formed. */
  private static byte[] damage(Random r, byte[] text) {
    byte[] t = text;
    for (int edits = 1 + r.nextInt(3); edits > 0; edits--) {
      int at = r.nextInt(t.length + 1);
      while (at < t.length && t[at] < 0) {
        at++;
      }
      byte noise = NOISE[r.nextInt(NOISE.length)];
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      out.write(t, 0, at);
      switch (r.nextInt(4)) {
        case 0 -> { // insert
          out.write(noise);
          out.write(t, at, t.length - at);
        }
        case 1 -> { // replace
          if (at < t.length) {
            out.write(noise);
            out.write(t, at + 1, t.length - at - 1);
          }
        }
        case 2 -> { // delete
          if (at < t.length) {
            out.write(t, at + 1, t.length - at - 1);
          }
        }
        default -> {} // cut off here
      }
      t = out.toByteArray();
    }
    return t;
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
