package dev.nodemesh.model.cni;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.model.cni.MalformedJsonException.JsonLimitException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import org.jspecify.annotations.Nullable;

/**
 * A strict JSON reader (RFC 8259, UTF-8) from bytes straight to Jackson trees: what {@link
 * JsonTrees#read} runs. It exists because every Jackson parser initialises {@code BigDecimal} (its
 * {@code ParserMinimalBase} holds {@code BigDecimal} constants), and JDK 25's {@code
 * BigDecimal.<clinit>} costs a CNI plugin call 11–15 ms of CPU, about a tenth of an ADD, for
 * numbers a CNI config never holds. Nothing here touches {@code BigDecimal}.
 *
 * <p>It builds the trees Jackson's {@code ObjectMapper.readTree} builds with its defaults (the
 * differential test in {@code JsonTreesTest} holds it to that): the first value only, with what
 * follows it ignored (after a root number only whitespace may follow it directly, after a root
 * {@code true}/{@code false}/{@code null} nothing that would continue it, as Jackson has it); a
 * repeated key keeps the last value in the first one's place; integers as int, long or BigInteger
 * nodes by size, other numbers as doubles. It refuses what Jackson's defaults refuse: comments,
 * single quotes, unquoted names, trailing commas, leading zeros, {@code NaN}, unescaped control
 * characters, unknown escapes. Where it differs, it is stricter: only UTF-8 (Jackson also detects
 * UTF-16 and UTF-32, which RFC 8259 does not allow between systems), and overlong or surrogate
 * UTF-8 sequences in strings are refused (Jackson decodes them). The limits are checked while
 * reading, so nothing over them is built. Recursive, one frame per level: the depth limit bounds
 * the stack.
 */
final class JsonTreeReader {
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  private final byte[] in;
  private final JsonTrees.Limits limits;
  private int pos;
  private int depth;

  private JsonTreeReader(byte[] in, JsonTrees.Limits limits) {
    this.in = in;
    this.limits = limits;
  }

  static @Nullable JsonNode read(byte[] json, JsonTrees.Limits limits)
      throws MalformedJsonException {
    JsonTreeReader r = new JsonTreeReader(json, limits);
    // A UTF-8 byte order mark, which Jackson skips too.
    if (json.length >= 3
        && (json[0] & 0xff) == 0xef
        && (json[1] & 0xff) == 0xbb
        && (json[2] & 0xff) == 0xbf) {
      r.pos = 3;
    }
    int c = r.skipWhitespace();
    if (c < 0) {
      return null;
    }
    JsonNode v = r.value(c);
    r.checkRootEnd(c);
    return v;
  }

  /**
   * What may follow a root value directly, as Jackson has it: after a number only whitespace (or
   * the end), after a literal no character that would continue it; after a string, object or array
   * anything (and the rest is not read).
   */
  private void checkRootEnd(int first) throws MalformedJsonException {
    if (pos >= in.length) {
      return;
    }
    int next = in[pos] & 0xff;
    if ((first == '-' || isDigit(first)) && !isWhitespace(next)) {
      throw malformed("expected white space after the number, found " + describe(next));
    }
    // Jackson's rule: an ASCII character from '0' up, other than ']' and '}', that could be part of
    // a Java identifier continues the literal into an unknown token; any non-ASCII byte there is
    // refused too (Jackson 2's check reads the sequence's lead byte as its middle byte, so every
    // one fails: "Invalid UTF-8 middle byte"; found by JsonTreesFuzzTest).
    if ((first == 't' || first == 'f' || first == 'n')
        && next >= '0'
        && next != ']'
        && next != '}') {
      if (next >= 0x80 || Character.isJavaIdentifierPart((char) next)) {
        throw malformed("unrecognised token (a literal followed by " + describe(next) + ")");
      }
    }
  }

  /** The next byte that is not white space, not consumed; -1 at the end. */
  private int skipWhitespace() {
    while (pos < in.length) {
      int b = in[pos] & 0xff;
      if (!isWhitespace(b)) {
        return b;
      }
      pos++;
    }
    return -1;
  }

  private JsonNode value(int c) throws MalformedJsonException {
    return switch (c) {
      case '{' -> object();
      case '[' -> array();
      case '"' -> NODES.textNode(string(false));
      case 't' -> literal("true", NODES.booleanNode(true));
      case 'f' -> literal("false", NODES.booleanNode(false));
      case 'n' -> literal("null", NODES.nullNode());
      default -> {
        if (c == '-' || isDigit(c)) {
          yield number();
        }
        throw malformed("expected a value, found " + describe(c));
      }
    };
  }

  private ObjectNode object() throws MalformedJsonException {
    enter();
    pos++; // '{'
    ObjectNode o = NODES.objectNode();
    int c = skipWhitespace();
    if (c == '}') {
      pos++;
      depth--;
      return o;
    }
    while (true) {
      if (c != '"') {
        throw malformed("expected a key in double quotes, found " + describe(c));
      }
      String name = string(true);
      c = skipWhitespace();
      if (c != ':') {
        throw malformed("expected ':' after a key, found " + describe(c));
      }
      pos++;
      c = skipWhitespace();
      o.set(name, value(c));
      c = skipWhitespace();
      if (c == ',') {
        pos++;
        c = skipWhitespace();
      } else if (c == '}') {
        pos++;
        depth--;
        return o;
      } else {
        throw malformed("expected ',' or '}' in an object, found " + describe(c));
      }
    }
  }

  private ArrayNode array() throws MalformedJsonException {
    enter();
    pos++; // '['
    ArrayNode a = NODES.arrayNode();
    int c = skipWhitespace();
    if (c == ']') {
      pos++;
      depth--;
      return a;
    }
    while (true) {
      a.add(value(c));
      c = skipWhitespace();
      if (c == ',') {
        pos++;
        c = skipWhitespace();
      } else if (c == ']') {
        pos++;
        depth--;
        return a;
      } else {
        throw malformed("expected ',' or ']' in an array, found " + describe(c));
      }
    }
  }

  private void enter() throws JsonLimitException {
    if (++depth > limits.maxDepth()) {
      throw new JsonLimitException(
          "nesting is deeper than " + limits.maxDepth() + " levels", where());
    }
  }

  private JsonNode literal(String word, JsonNode node) throws MalformedJsonException {
    int n = word.length();
    if (pos + n > in.length) {
      throw malformed("unrecognised token (expected '" + word + "')");
    }
    for (int i = 0; i < n; i++) {
      if (in[pos + i] != word.charAt(i)) {
        throw malformed("unrecognised token (expected '" + word + "')");
      }
    }
    pos += n;
    return node;
  }

  /** The number at {@code pos}: int, long, BigInteger or double node, as Jackson picks them. */
  private JsonNode number() throws MalformedJsonException {
    int start = pos;
    if (in[pos] == '-') {
      pos++;
    }
    int intStart = pos;
    if (pos >= in.length || !isDigit(in[pos])) {
      throw malformed("expected a digit in a number, found " + describeAt(pos));
    }
    if (in[pos] == '0') {
      pos++;
      if (pos < in.length && isDigit(in[pos])) {
        throw malformed("a number with a leading zero");
      }
    } else {
      skipDigits();
    }
    int intDigits = pos - intStart;
    int digits = intDigits;
    boolean integer = true;
    if (pos < in.length && in[pos] == '.') {
      pos++;
      digits += requireDigits("after the decimal point");
      integer = false;
    }
    if (pos < in.length && (in[pos] == 'e' || in[pos] == 'E')) {
      pos++;
      if (pos < in.length && (in[pos] == '+' || in[pos] == '-')) {
        pos++;
      }
      digits += requireDigits("in the exponent");
      integer = false;
    }
    if (digits > limits.maxNumberLength()) {
      throw new JsonLimitException(
          "a number of " + digits + " digits (at most " + limits.maxNumberLength() + " allowed)",
          where());
    }
    String text = new String(in, start, pos - start, StandardCharsets.ISO_8859_1);
    if (!integer) {
      return NODES.numberNode(Double.parseDouble(text));
    }
    if (intDigits <= 9) {
      return NODES.numberNode(Integer.parseInt(text));
    }
    if (intDigits <= 19) {
      try {
        long v = Long.parseLong(text);
        return v == (int) v ? NODES.numberNode((int) v) : NODES.numberNode(v);
      } catch (NumberFormatException beyondLong) {
        // 19 digits past Long.MAX_VALUE: a BigInteger, as below
      }
    }
    return NODES.numberNode(new BigInteger(text));
  }

  private void skipDigits() {
    while (pos < in.length && isDigit(in[pos])) {
      pos++;
    }
  }

  private int requireDigits(String where) throws MalformedJsonException {
    int from = pos;
    skipDigits();
    if (pos == from) {
      throw malformed("expected a digit " + where + ", found " + describeAt(pos));
    }
    return pos - from;
  }

  /**
   * The string at {@code pos} (its opening quote), decoded. Plain ASCII without escapes, which is
   * nearly every string of a CNI config, is one copy; the rest goes through a builder.
   */
  private String string(boolean key) throws MalformedJsonException {
    int max = key ? limits.maxNameLength() : limits.maxStringLength();
    String what = key ? "key" : "string";
    pos++; // '"'
    int start = pos;
    while (pos < in.length) {
      int b = in[pos] & 0xff;
      if (b == '"') {
        checkLength(pos - start, max, what);
        String s = new String(in, start, pos - start, StandardCharsets.ISO_8859_1);
        pos++;
        return s;
      }
      if (b == '\\' || b < 0x20 || b >= 0x80) {
        break;
      }
      pos++;
    }
    StringBuilder sb = new StringBuilder(pos - start + 16);
    sb.append(new String(in, start, pos - start, StandardCharsets.ISO_8859_1));
    while (pos < in.length) {
      checkLength(sb.length(), max, what);
      int b = in[pos] & 0xff;
      if (b == '"') {
        pos++;
        if (key) {
          requirePairedSurrogates(sb);
        }
        return sb.toString();
      } else if (b == '\\') {
        escape(sb);
      } else if (b < 0x20) {
        throw malformed("an unescaped control character (code " + b + ") in a " + what);
      } else if (b < 0x80) {
        sb.append((char) b);
        pos++;
      } else {
        utf8(sb, b);
      }
    }
    throw malformed("a " + what + " without its closing quote");
  }

  /**
   * A key's {@code \\u} escapes must pair their surrogates, as Jackson requires of names (it keeps
   * a lone one in a string value, and so does this reader).
   */
  private void requirePairedSurrogates(CharSequence key) throws MalformedJsonException {
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

  private void checkLength(int length, int max, String what) throws JsonLimitException {
    if (length > max) {
      throw new JsonLimitException("a " + what + " longer than " + max + " characters", where());
    }
  }

  private void escape(StringBuilder sb) throws MalformedJsonException {
    if (pos + 1 >= in.length) {
      throw malformed("a string ends inside an escape");
    }
    int e = in[pos + 1] & 0xff;
    pos += 2;
    switch (e) {
      case '"' -> sb.append('"');
      case '\\' -> sb.append('\\');
      case '/' -> sb.append('/');
      case 'b' -> sb.append('\b');
      case 'f' -> sb.append('\f');
      case 'n' -> sb.append('\n');
      case 'r' -> sb.append('\r');
      case 't' -> sb.append('\t');
      case 'u' -> {
        if (pos + 4 > in.length) {
          throw malformed("a string ends inside a \\u escape");
        }
        int v = 0;
        for (int i = 0; i < 4; i++) {
          int h = Character.digit(in[pos + i] & 0xff, 16);
          if (h < 0) {
            throw malformed("a \\u escape with a character that is not a hex digit");
          }
          v = v << 4 | h;
        }
        pos += 4;
        // A lone surrogate stays a lone char, as Jackson reads it.
        sb.append((char) v);
      }
      default -> {
        pos -= 1; // where the bad escape character is
        throw malformed("an unknown escape \\" + describe(e) + " in a string");
      }
    }
  }

  /**
   * One UTF-8 sequence starting with {@code b} (at {@code pos}); overlong and surrogates refused.
   */
  private void utf8(StringBuilder sb, int b) throws MalformedJsonException {
    int n;
    int cp;
    int min;
    if (b >= 0xc2 && b <= 0xdf) {
      n = 1;
      cp = b & 0x1f;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      cp = b & 0x0f;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      cp = b & 0x07;
      min = 0x10000;
    } else {
      throw malformed("invalid UTF-8 (byte " + hex(b) + ")");
    }
    if (pos + n >= in.length) {
      throw malformed("invalid UTF-8 (a sequence cut off by the end)");
    }
    for (int i = 1; i <= n; i++) {
      int cont = in[pos + i] & 0xff;
      if ((cont & 0xc0) != 0x80) {
        throw malformed("invalid UTF-8 (byte " + hex(cont) + " inside a sequence)");
      }
      cp = cp << 6 | (cont & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      throw malformed("invalid UTF-8 (an overlong, surrogate or out-of-range sequence)");
    }
    sb.appendCodePoint(cp);
    pos += n + 1;
  }

  private static boolean isWhitespace(int b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }

  private static boolean isDigit(int b) {
    return b >= '0' && b <= '9';
  }

  private String describeAt(int at) {
    return at < in.length ? describe(in[at] & 0xff) : describe(-1);
  }

  private static String describe(int b) {
    if (b < 0) {
      return "the end of the input";
    }
    if (b >= 0x21 && b < 0x7f) {
      return "'" + (char) b + "'";
    }
    return "byte " + hex(b);
  }

  private static String hex(int b) {
    return "0x" + Character.forDigit(b >> 4, 16) + Character.forDigit(b & 0xf, 16);
  }

  private MalformedJsonException malformed(String reason) {
    return new MalformedJsonException(reason, where());
  }

  /** Line and column (1-based, the column in bytes) of {@code pos}. */
  private String where() {
    int at = Math.min(pos, in.length);
    int line = 1;
    int lineStart = 0;
    for (int i = 0; i < at; i++) {
      if (in[i] == '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    return "at line " + line + ", column " + (at - lineStart + 1);
  }
}
