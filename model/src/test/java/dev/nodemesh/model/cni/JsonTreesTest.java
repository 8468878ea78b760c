package dev.nodemesh.model.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** JsonTrees reads and writes exactly as an ObjectMapper with its defaults does. */
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

  @Test
  void malformedJsonFailsAsTheParserSays() {
    for (String bad : List.of("{", "{\"a\": }", "[1,]", "{\"a\" 1}", "nul", "\"open")) {
      assertThrows(JsonParseException.class, () -> JsonTrees.read(bad), bad);
    }
  }

  @Test
  void theFactorysReadConstraintsHold() {
    JsonFactory strict =
        JsonFactory.builder()
            .streamReadConstraints(
                StreamReadConstraints.builder().maxNestingDepth(3).maxStringLength(8).build())
            .build();
    assertThrows(
        StreamConstraintsException.class,
        () -> JsonTrees.read(strict, "[[[[1]]]]".getBytes("UTF-8")));
    assertThrows(
        StreamConstraintsException.class,
        () -> JsonTrees.read(strict, "{\"a\": \"0123456789\"}".getBytes("UTF-8")));
  }
}
