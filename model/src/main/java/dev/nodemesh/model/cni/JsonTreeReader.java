package dev.nodemesh.model.cni;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import dev.nodemesh.model.cni.MalformedJsonException.JsonLimitException;
import java.io.EOFException;
import java.io.IOException;
import java.io.Reader;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Strict JSON (RFC 8259, UTF-8) from bytes to Jackson trees: what {@link JsonTrees#read} runs. The
 * tokenizing is Gson's streaming {@link JsonReader} in {@link Strictness#STRICT} mode, which reads
 * numbers as text and so initialises no {@code BigDecimal}; every Jackson parser does ({@code
 * ParserMinimalBase} holds {@code BigDecimal} constants), and JDK 25's {@code BigDecimal.<clinit>}
 * costs a CNI plugin call 11–15 ms of CPU, for numbers a CNI config never holds.
 *
 * <p>This class builds the trees Jackson's {@code ObjectMapper.readTree} builds with its defaults
 * (the differential test in {@code JsonTreesTest} holds it to that): the first value only, with
 * what follows it not read (after a root number only whitespace may follow it directly, after a
 * root {@code true}/{@code false}/{@code null} nothing that would continue it, as Jackson has it:
 * checked here on the bytes, Gson in strict mode would refuse more); a repeated key keeps the last
 * value in the first one's place; integers as int, long or BigInteger nodes by size, other numbers
 * as doubles (parsed here from the text). What Gson's strict mode lets through and Jackson does not
 * is refused here: a key with an unpaired {@code \\u} surrogate. Stricter than Jackson: only UTF-8,
 * and overlong or surrogate UTF-8 sequences are refused (the JDK's decoder, lazily, so bytes after
 * the root value are never decoded). Depth and number length are checked before a container is
 * entered or a number built; a string's or key's length only once Gson has decoded it, so one over
 * the limit costs at most the input's size before it is refused. Positions in messages are Gson's:
 * line and column in characters. Recursive, one frame per level: the depth limit bounds the stack.
 */
final class JsonTreeReader {
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
  private static final Pattern WHERE = Pattern.compile(" at line (\\d+) column (\\d+)");

  private final JsonReader gson;
  private final JsonTrees.Limits limits;
  private int depth;

  private JsonTreeReader(JsonReader gson, JsonTrees.Limits limits) {
    this.gson = gson;
    this.limits = limits;
  }

  static @Nullable JsonNode read(byte[] json, JsonTrees.Limits limits)
      throws MalformedJsonException {
    int start = 0;
    // A UTF-8 byte order mark, which Jackson skips too.
    if (json.length >= 3
        && (json[0] & 0xff) == 0xef
        && (json[1] & 0xff) == 0xbb
        && (json[2] & 0xff) == 0xbf) {
      start = 3;
    }
    int first = start;
    while (first < json.length && isWhitespace(json[first])) {
      first++;
    }
    if (first == json.length) {
      return null;
    }
    int c = json[first] & 0xff;
    if (c == 't' || c == 'f' || c == 'n') {
      // A root literal: Jackson's rule for what may follow it is not Gson's (see rootLiteral).
      return rootLiteral(json, first);
    }
    JsonReader gson = new JsonReader(new Utf8Reader(json, start));
    gson.setStrictness(Strictness.STRICT);
    // Depth is checked here, with a limit exception; Gson's own check stays out of the way.
    gson.setNestingLimit(Integer.MAX_VALUE);
    JsonTreeReader r = new JsonTreeReader(gson, limits);
    JsonNode v;
    try {
      v = r.value();
    } catch (MalformedJsonException e) {
      throw e;
    } catch (IOException | IllegalStateException e) {
      throw fromGson(e);
    }
    if (v.isNumber()) {
      // Gson has read the number's text, ASCII, so its end in bytes is known.
      int end = first + r.lastNumberLength;
      if (end < json.length && !isWhitespace(json[end])) {
        throw new MalformedJsonException(
            "expected white space after the number, found " + describe(json[end] & 0xff),
            byteWhere(json, start, end));
      }
    }
    return v;
  }

  private int lastNumberLength;

  private JsonNode value() throws IOException {
    JsonToken t = gson.peek();
    return switch (t) {
      case BEGIN_OBJECT -> object();
      case BEGIN_ARRAY -> array();
      case STRING -> string(gson.nextString());
      case NUMBER -> number(gson.nextString());
      case BOOLEAN -> NODES.booleanNode(gson.nextBoolean());
      case NULL -> {
        gson.nextNull();
        yield NODES.nullNode();
      }
      default -> throw malformed("expected a value, found " + t);
    };
  }

  private ObjectNode object() throws IOException {
    enter();
    gson.beginObject();
    ObjectNode o = NODES.objectNode();
    while (gson.hasNext()) {
      String name = gson.nextName();
      if (name.length() > limits.maxNameLength()) {
        throw limit("a key longer than " + limits.maxNameLength() + " characters");
      }
      requirePairedSurrogates(name);
      o.set(name, value());
    }
    gson.endObject();
    depth--;
    return o;
  }

  private ArrayNode array() throws IOException {
    enter();
    gson.beginArray();
    ArrayNode a = NODES.arrayNode();
    while (gson.hasNext()) {
      a.add(value());
    }
    gson.endArray();
    depth--;
    return a;
  }

  private void enter() throws JsonLimitException {
    if (++depth > limits.maxDepth()) {
      throw limit("nesting is deeper than " + limits.maxDepth() + " levels");
    }
  }

  private JsonNode string(String s) throws JsonLimitException {
    if (s.length() > limits.maxStringLength()) {
      throw limit("a string longer than " + limits.maxStringLength() + " characters");
    }
    return NODES.textNode(s);
  }

  /**
   * A number's text as Gson read it (RFC 8259's grammar, strict mode): int, long or BigInteger node
   * by size, as Jackson picks them, else a double; never a {@code BigDecimal}.
   */
  private JsonNode number(String text) throws JsonLimitException {
    lastNumberLength = text.length();
    int digits = 0;
    int intDigits = -1;
    for (int i = 0; i < text.length(); i++) {
      char ch = text.charAt(i);
      if (ch >= '0' && ch <= '9') {
        digits++;
      } else if (ch != '-' && intDigits < 0) {
        intDigits = digits;
      }
    }
    if (digits > limits.maxNumberLength()) {
      throw limit(
          "a number of " + digits + " digits (at most " + limits.maxNumberLength() + " allowed)");
    }
    if (intDigits >= 0) {
      return NODES.numberNode(Double.parseDouble(text));
    }
    if (digits <= 9) {
      return NODES.numberNode(Integer.parseInt(text));
    }
    if (digits <= 19) {
      try {
        long v = Long.parseLong(text);
        return v == (int) v ? NODES.numberNode((int) v) : NODES.numberNode(v);
      } catch (NumberFormatException beyondLong) {
        // 19 digits past Long.MAX_VALUE: a BigInteger, as below
      }
    }
    return NODES.numberNode(new BigInteger(text));
  }

  /**
   * A key's {@code \\u} escapes must pair their surrogates, as Jackson requires of names (it keeps
   * a lone one in a string value, and so do Gson and this reader).
   */
  private void requirePairedSurrogates(String key) throws MalformedJsonException {
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < key.length()
          && Character.isLowSurrogate(key.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw malformed("a key with an unpaired surrogate \\u" + Integer.toHexString(c));
      }
    }
  }

  /**
   * A root {@code true}, {@code false} or {@code null}, read from the bytes: Jackson ends it at any
   * character that could not continue it, Gson's strict mode only at white space and punctuation.
   */
  private static JsonNode rootLiteral(byte[] in, int pos) throws MalformedJsonException {
    String word =
        switch (in[pos]) {
          case 't' -> "true";
          case 'f' -> "false";
          default -> "null";
        };
    String where = byteWhere(in, 0, pos);
    int n = word.length();
    if (pos + n > in.length || !new String(in, pos, n, StandardCharsets.ISO_8859_1).equals(word)) {
      throw new MalformedJsonException("unrecognised token (expected '" + word + "')", where);
    }
    int at = pos + n;
    if (at < in.length) {
      int next = in[at] & 0xff;
      // Jackson's rule: a character from '0' up, other than ']' and '}', that could be part of a
      // Java identifier (its UTF-8 decoded, the code point cut to a char as Jackson does)
      // continues the literal into an unknown token.
      if (next >= '0' && next != ']' && next != '}') {
        int cp = next < 0x80 ? next : codePointAt(in, at);
        if (cp < 0 || Character.isJavaIdentifierPart((char) cp)) {
          throw new MalformedJsonException(
              "unrecognised token (a literal followed by " + describe(next) + ")", where);
        }
      }
    }
    return switch (word) {
      case "true" -> NODES.booleanNode(true);
      case "false" -> NODES.booleanNode(false);
      default -> NODES.nullNode();
    };
  }

  /** The code point of the UTF-8 sequence at {@code at}, or -1 when it is not well-formed. */
  private static int codePointAt(byte[] in, int at) {
    CharsetDecoder d =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    CharBuffer out = CharBuffer.allocate(2);
    CoderResult r = d.decode(ByteBuffer.wrap(in, at, Math.min(4, in.length - at)), out, true);
    if (out.position() == 0 || (r.isError() && out.position() == 0)) {
      return -1;
    }
    out.flip();
    return Character.codePointAt(out, 0);
  }

  /** Line and column (1-based, the column in bytes) of {@code at}, counted from {@code from}. */
  private static String byteWhere(byte[] in, int from, int at) {
    int line = 1;
    int lineStart = from;
    for (int i = from; i < at; i++) {
      if (in[i] == '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    return "at line " + line + ", column " + (at - lineStart + 1);
  }

  private static boolean isWhitespace(byte b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }

  private static String describe(int b) {
    if (b >= 0x21 && b < 0x7f) {
      return "'" + (char) b + "'";
    }
    return "byte 0x" + Character.forDigit(b >> 4, 16) + Character.forDigit(b & 0xf, 16);
  }

  private MalformedJsonException malformed(String reason) {
    return new MalformedJsonException(reason, where(gson.toString()));
  }

  private JsonLimitException limit(String reason) {
    return new JsonLimitException(reason, where(gson.toString()));
  }

  /** "at line L, column C" from Gson's location text, or "at an unknown place". */
  private static String where(String gsonText) {
    Matcher m = WHERE.matcher(gsonText);
    return m.find() ? "at line " + m.group(1) + ", column " + m.group(2) : "at an unknown place";
  }

  /**
   * Gson's refusal as ours: its reason (first line, without the place and the troubleshooting
   * link), and its place.
   */
  private static MalformedJsonException fromGson(Exception e) {
    if (e.getCause() instanceof MalformedJsonException ours) {
      return ours;
    }
    String text = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    int nl = text.indexOf('\n');
    String line = nl < 0 ? text : text.substring(0, nl);
    Matcher m = WHERE.matcher(line);
    String reason = m.find() ? line.substring(0, m.start()) : line;
    if (e instanceof EOFException) {
      reason = "the input ends inside a value (" + reason + ")";
    } else if (reason.equals("Unterminated object")) {
      reason = "expected ',' or '}' in an object";
    } else if (reason.equals("Unterminated array")) {
      reason = "expected ',' or ']' in an array";
    } else if (reason.startsWith("Use JsonReader.setStrictness")) {
      reason = "not JSON (an unquoted word, a leading zero or a malformed number)";
    }
    return new MalformedJsonException(reason, where(line));
  }

  /**
   * UTF-8 bytes as characters, decoded only as far as Gson asks: a malformed sequence is refused
   * when Gson needs the characters from it on, so bytes after the root value are never judged (as
   * Jackson ignores them).
   */
  private static final class Utf8Reader extends Reader {
    private final ByteBuffer in;
    private final CharsetDecoder decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private boolean bad;

    Utf8Reader(byte[] bytes, int start) {
      this.in = ByteBuffer.wrap(bytes, start, bytes.length - start);
    }

    @Override
    public int read(char[] cbuf, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (bad) {
        throw new IOException(
            "", new MalformedJsonException("invalid UTF-8", "at byte " + (in.position() + 1)));
      }
      if (!in.hasRemaining()) {
        return -1;
      }
      CharBuffer out = CharBuffer.wrap(cbuf, off, len);
      CoderResult r = decoder.decode(in, out, true);
      if (r.isError()) {
        bad = true;
      }
      int n = out.position() - off;
      if (n == 0) {
        return read(cbuf, off, len);
      }
      return n;
    }

    @Override
    public void close() {}
  }
}
