package dev.nodemesh.cni.plugin;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.cni.spec.CniEnv;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.cni.spec.NetConf;
import dev.nodemesh.model.cni.JsonTrees;
import dev.nodemesh.model.cni.MalformedJsonException;
import dev.nodemesh.model.cni.MalformedJsonException.JsonLimitException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Iterator;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Size limits on everything the runtime hands the plugin, checked before anything else reads it, so
 * that an oversized field is a CNI error object and never an {@code OutOfMemoryError} in the
 * plugin's small heap (the wrapper runs it with {@code -Xmx128m}).
 *
 * <p>The limits are far above what a runtime sends for a real pod (a conf with its prevResult is a
 * few KiB; GC's attachment list grows by ~100 bytes a pod) and far below what the heap holds.
 * Environment variables the plugin does not read are not looked at.
 */
public final class InputLimits {
  /** The whole of stdin: the plugin's conf with prevResult, or GC's list of attachments. */
  public static final int MAX_STDIN_BYTES = 1 << 20;

  /** How much of an oversized stdin is read and dropped before the plugin answers anyway. */
  static final long MAX_STDIN_DRAINED = 256L << 20;

  /** Any one JSON string, key or value. */
  public static final int MAX_JSON_STRING = 16 * 1024;

  /** Objects and arrays inside each other; a real conf nests 4 deep. */
  public static final int MAX_JSON_DEPTH = 32;

  /**
   * The {@code CNI_*} variables the plugin reads and their limits: the container ID names the
   * record file ({@code <id>.json} within NAME_MAX 255), the netns is a path (PATH_MAX 4096).
   */
  static final Map<String, Integer> MAX_ENV =
      Map.of(
          "CNI_COMMAND", 16,
          "CNI_CONTAINERID", 250,
          "CNI_NETNS", 4095,
          "CNI_IFNAME", 64,
          "CNI_PATH", 16 * 1024,
          "CNI_ARGS", 16 * 1024);

  /**
   * The {@code CNI_ARGS} values that reach the record and the agent, at Kubernetes' own limits (a
   * pod name is a DNS subdomain, a namespace a DNS label, a uid a UUID, with room for runtimes that
   * use other ids); any other pair is held to the {@code CNI_ARGS} limit as a whole.
   */
  static final Map<String, Integer> MAX_ARG =
      Map.of("K8S_POD_NAME", 253, "K8S_POD_NAMESPACE", 63, "K8S_POD_UID", 253);

  /** Digits in one JSON number. */
  public static final int MAX_JSON_NUMBER = 64;

  /**
   * The reader stops at these while it reads, so a deep nest or a long number is refused before it
   * is built; strings are held only to stdin's size here, and the walk in {@link #checkJson} then
   * names a field whose string is over {@link #MAX_JSON_STRING}.
   */
  static final JsonTrees.Limits JSON =
      new JsonTrees.Limits(MAX_JSON_DEPTH, MAX_JSON_NUMBER, MAX_STDIN_BYTES, MAX_STDIN_BYTES);

  private InputLimits() {}

  /**
   * Keeps stdin up to one byte past the limit, so a huge stdin costs at most that in memory; the
   * caller passes the result to {@link #checkStdin}, which refuses it when it is over. The rest is
   * read and dropped (up to {@link #MAX_STDIN_DRAINED}), so the runtime's write ends normally and
   * it reads our error object rather than failing on a broken pipe.
   */
  public static byte[] readStdin(InputStream in) throws IOException {
    byte[] kept = in.readNBytes(MAX_STDIN_BYTES + 1);
    if (kept.length > MAX_STDIN_BYTES) {
      long dropped = 0;
      byte[] sink = new byte[64 * 1024];
      int n;
      while (dropped < MAX_STDIN_DRAINED && (n = in.read(sink)) >= 0) {
        dropped += n;
      }
    }
    return kept;
  }

  /** Code 4 naming the variable (not its value) when one is too long. */
  static void checkEnv(Map<String, String> env) throws CniError {
    for (Map.Entry<String, Integer> e : MAX_ENV.entrySet()) {
      String v = env.get(e.getKey());
      if (v != null && v.length() > e.getValue()) {
        throw tooLong(CniError.INVALID_ENVIRONMENT, e.getKey(), v.length(), e.getValue());
      }
    }
    String args = env.get("CNI_ARGS");
    if (args != null && !args.isEmpty()) {
      Map<String, String> parsed;
      try {
        parsed = CniEnv.parseArgs(args);
      } catch (CniError malformed) {
        return; // CniEnv.from reports it with its own message
      }
      for (Map.Entry<String, Integer> e : MAX_ARG.entrySet()) {
        String v = parsed.get(e.getKey());
        if (v != null && v.length() > e.getValue()) {
          throw tooLong(
              CniError.INVALID_ENVIRONMENT, "CNI_ARGS " + e.getKey(), v.length(), e.getValue());
        }
      }
    }
  }

  /**
   * stdin as read once for the whole call: its JSON value (null when it holds none), or why it is
   * not JSON. Malformed JSON is not refused here: VERSION answers whatever stdin holds, and the
   * other commands report it through {@link NetConf#of}, as {@code NetConf.parse} does.
   */
  record Stdin(@Nullable JsonNode tree, @Nullable MalformedJsonException malformed) {}

  /**
   * Code 6 when stdin is over its limit or nests too deep, code 7 naming the field when one string
   * is too long; otherwise the tree, read once here with these limits, for everything after.
   */
  static Stdin checkStdin(byte[] stdin) throws CniError {
    if (stdin.length > MAX_STDIN_BYTES) {
      throw new CniError(
          CniError.DECODING_FAILURE,
          "decoding the network configuration failed",
          "stdin is larger than " + MAX_STDIN_BYTES + " bytes");
    }
    JsonNode tree;
    try {
      tree = JsonTrees.read(stdin, JSON);
    } catch (JsonLimitException e) {
      throw new CniError(
          CniError.DECODING_FAILURE, "decoding the network configuration failed", e.getMessage());
    } catch (MalformedJsonException e) {
      return new Stdin(null, e);
    }
    if (tree != null) {
      checkJson(tree, "");
    }
    return new Stdin(tree, null);
  }

  /** Walks the tree (depth already bounded by the reader) checking every key and string. */
  static void checkJson(JsonNode node, String pointer) throws CniError {
    if (node.isTextual() && node.textValue().length() > MAX_JSON_STRING) {
      throw tooLong(
          CniError.INVALID_NETWORK_CONFIG,
          "field " + shorten(pointer),
          node.textValue().length(),
          MAX_JSON_STRING);
    }
    if (node.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> f = it.next();
        if (f.getKey().length() > MAX_JSON_STRING) {
          throw tooLong(
              CniError.INVALID_NETWORK_CONFIG,
              "a key in " + shorten(pointer),
              f.getKey().length(),
              MAX_JSON_STRING);
        }
        checkJson(f.getValue(), pointer + "/" + f.getKey());
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        checkJson(node.get(i), pointer + "/" + i);
      }
    }
  }

  /** A JSON pointer for a message: keys may be long, the message should not be. */
  private static String shorten(String pointer) {
    if (pointer.isEmpty()) {
      return "/";
    }
    return pointer.length() <= 200 ? pointer : pointer.substring(0, 200) + "...";
  }

  private static CniError tooLong(int code, String what, int length, int max) {
    return new CniError(
        code, what + " is too long", length + " characters, at most " + max + " allowed");
  }
}
