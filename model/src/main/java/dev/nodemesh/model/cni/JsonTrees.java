package dev.nodemesh.model.cni;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * JSON text to Jackson trees and back without an {@code ObjectMapper}, for the CNI plugin, which
 * starts a JVM for every pod's ADD and DEL (and for everything that shares its formats: the run-dir
 * records, the runner, install-cni).
 *
 * <p>Why not an {@code ObjectMapper}: building the first one initialises databind's defaults, among
 * them a date format with a {@code GregorianCalendar}, which loads the JDK's CLDR locale data;
 * measured with {@code -Xlog:class+init} on an idle machine that was about 40 ms of a 130 ms plugin
 * run, more than the rest of the plugin's own work, and a CNI call never reads a date. Why not
 * Jackson's streaming parser either: every Jackson parser initialises {@code BigDecimal}, 11–15 ms
 * of CPU in JDK 25 (see {@link JsonTreeReader}, which reads instead). The trees are the same {@link
 * JsonNode} classes the rest of the code uses, built through {@link JsonNodeFactory}, and read as
 * {@code ObjectMapper.readTree} does with its defaults: the first value only (trailing content
 * ignored), a repeated key keeps the last value, integers as int, long or BigInteger nodes by size,
 * other numbers as doubles; the text must be UTF-8. Writing is Jackson's streaming generator, which
 * initialises nothing of the kind. {@link JsonNode#toString()} would build the mapper anyway, so
 * the plugin writes through {@link #write} and {@link #bytes}.
 */
public final class JsonTrees {
  private static final JsonFactory DEFAULT = new JsonFactory();

  /**
   * What a reader holds a text to while it reads: nesting depth, digits in a number, characters in
   * a string value and in a key. Over any of them, {@link #read(byte[], Limits)} throws a {@link
   * MalformedJsonException.JsonLimitException} and builds nothing more.
   */
  public record Limits(int maxDepth, int maxNumberLength, int maxStringLength, int maxNameLength) {
    /** Jackson's own defaults ({@code StreamReadConstraints}), which {@link #read(byte[])} uses. */
    public static final Limits DEFAULT = new Limits(1000, 1000, 20_000_000, 50_000);
  }

  private JsonTrees() {}

  /** The first JSON value of {@code json}, or null when it holds none (empty or blank). */
  public static @Nullable JsonNode read(byte[] json) throws MalformedJsonException {
    return read(json, Limits.DEFAULT);
  }

  /** As {@link #read(byte[])}, for text. */
  public static @Nullable JsonNode read(String json) throws MalformedJsonException {
    return read(json.getBytes(StandardCharsets.UTF_8));
  }

  /** As {@link #read(byte[])}, held to {@code limits} while it reads. */
  public static @Nullable JsonNode read(byte[] json, Limits limits) throws MalformedJsonException {
    return JsonTreeReader.read(json, limits);
  }

  /** {@code node} as compact JSON text, as {@code ObjectMapper.writeValueAsString}. */
  public static String write(JsonNode node) {
    return text(node, false);
  }

  /** {@code node} as JSON text indented as Jackson's default pretty printer does it. */
  public static String writePretty(JsonNode node) {
    return text(node, true);
  }

  /** {@code node} as compact UTF-8 JSON, as {@code ObjectMapper.writeValueAsBytes}. */
  public static byte[] bytes(JsonNode node) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    try (JsonGenerator g = DEFAULT.createGenerator(out)) {
      write(g, node);
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory", e);
    }
    return out.toByteArray();
  }

  // Through a Writer, as writeValueAsString does: the UTF-8 generator escapes characters outside
  // the BMP as escaped surrogate pairs, the character one writes them as they are.
  private static String text(JsonNode node, boolean pretty) {
    StringWriter out = new StringWriter(256);
    try (JsonGenerator g = DEFAULT.createGenerator(out)) {
      if (pretty) {
        g.setPrettyPrinter(new DefaultPrettyPrinter());
      }
      write(g, node);
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory", e);
    }
    return out.toString();
  }

  private static void write(JsonGenerator g, JsonNode n) throws IOException {
    switch (n.getNodeType()) {
      case OBJECT -> {
        g.writeStartObject();
        for (Map.Entry<String, JsonNode> e : n.properties()) {
          g.writeFieldName(e.getKey());
          write(g, e.getValue());
        }
        g.writeEndObject();
      }
      case ARRAY -> {
        g.writeStartArray();
        for (JsonNode e : n) {
          write(g, e);
        }
        g.writeEndArray();
      }
      case STRING -> g.writeString(n.textValue());
      case NUMBER -> {
        switch (n.numberType()) {
          case INT -> g.writeNumber(n.intValue());
          case LONG -> g.writeNumber(n.longValue());
          case BIG_INTEGER -> g.writeNumber(n.bigIntegerValue());
          case BIG_DECIMAL -> g.writeNumber(n.decimalValue());
          case FLOAT -> g.writeNumber(n.floatValue());
          default -> g.writeNumber(n.doubleValue());
        }
      }
      case BOOLEAN -> g.writeBoolean(n.booleanValue());
      case NULL -> g.writeNull();
      case BINARY -> g.writeBinary(n.binaryValue());
      default -> throw new IOException("cannot write a " + n.getNodeType() + " JSON node");
    }
  }
}
