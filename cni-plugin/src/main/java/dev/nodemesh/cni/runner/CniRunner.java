package dev.nodemesh.cni.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.cni.spec.CniVersion;
import dev.nodemesh.cni.spec.NetConf;
import dev.nodemesh.model.cni.JsonTrees;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * Executes the plugins of a conflist as libcni does: each plugin found by its {@code type} on the
 * CNI bin path, run with the {@code CNI_*} environment and its own config on stdin, with the list's
 * {@code name} and {@code cniVersion} injected and the previous plugin's result as {@code
 * prevResult}. ADD runs in order and chains results; DEL runs in reverse with the cached ADD result
 * (0.4.0 and later); CHECK runs in order with it. The last ADD result is cached under {@code
 * cacheDir} the way libcni caches under /var/lib/cni/results.
 *
 * <p>{@code launcher} prefixes every plugin command, e.g. {@code ip netns exec node} so that
 * plugins which create host-side links (bridge) do it in a test's "node" namespace, never the
 * machine's.
 *
 * <p>Limits: no {@code capabilities}/{@code runtimeConfig}, no GC; a plugin that outlives {@code
 * timeout} is killed (by its own process handle) and reported as code 11.
 */
public final class CniRunner {
  /** One attachment: which container, which netns, which interface name, which CNI_ARGS. */
  public record Attachment(
      String containerId, Path netns, String ifname, Map<String, String> args) {
    public Attachment {
      args = Map.copyOf(args);
    }

    String cniArgs() {
      List<String> pairs = new ArrayList<>();
      args.forEach((k, v) -> pairs.add(k + "=" + v));
      return String.join(";", pairs);
    }
  }

  private final List<Path> binPath;
  private final List<String> launcher;
  private final Path cacheDir;
  private final Duration timeout;

  public CniRunner(List<Path> binPath, List<String> launcher, Path cacheDir, Duration timeout) {
    this.binPath = List.copyOf(binPath);
    this.launcher = List.copyOf(launcher);
    this.cacheDir = cacheDir;
    this.timeout = timeout;
  }

  /** Reads and checks a conflist: {@code name}, a supported {@code cniVersion}, typed plugins. */
  public static ObjectNode parseConflist(byte[] json) throws CniError {
    NetConf conf = NetConf.parse(json);
    JsonNode plugins = conf.raw().path("plugins");
    if (conf.name().isEmpty()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "conflist: name is required");
    }
    if (!plugins.isArray() || plugins.isEmpty()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "conflist: plugins must be a list");
    }
    for (JsonNode p : plugins) {
      if (!p.isObject() || !p.path("type").isTextual() || p.path("type").asText().isEmpty()) {
        throw new CniError(
            CniError.INVALID_NETWORK_CONFIG, "conflist: every plugin needs a type", p.toString());
      }
    }
    return conf.raw();
  }

  /** ADD through the chain; returns (and caches) the last plugin's result. */
  public ObjectNode add(ObjectNode conflist, Attachment a)
      throws CniRunException, IOException, CniError {
    ObjectNode prev = null;
    for (JsonNode plugin : conflist.path("plugins")) {
      String out = exec("ADD", conflist, (ObjectNode) plugin, prev, a);
      JsonNode r = JsonTrees.read(out);
      if (r == null || !r.isObject()) {
        throw new CniRunException(
            plugin.path("type").asText(),
            new CniError(CniError.DECODING_FAILURE, "ADD printed no result", out),
            "");
      }
      prev = (ObjectNode) r;
    }
    if (prev == null) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "conflist has no plugins");
    }
    Files.createDirectories(cacheDir);
    Files.write(cacheFile(conflist, a), JsonTrees.bytes(prev));
    return prev;
  }

  /** CHECK through the chain with the cached result; needs 0.4.0 or later. */
  public void check(ObjectNode conflist, Attachment a)
      throws CniRunException, IOException, CniError {
    CniVersion v = CniVersion.parse(conflist.path("cniVersion").asText(""));
    if (!v.atLeast(CniVersion.V0_4_0)) {
      throw new CniError(CniError.INCOMPATIBLE_VERSION, "CHECK needs cniVersion 0.4.0 or later");
    }
    ObjectNode cached = cached(conflist, a);
    if (cached == null) {
      throw new CniError(CniError.UNKNOWN_CONTAINER, "no cached result for " + a.containerId());
    }
    for (JsonNode plugin : conflist.path("plugins")) {
      exec("CHECK", conflist, (ObjectNode) plugin, cached, a);
    }
  }

  /**
   * DEL through the chain in reverse. Every plugin runs even if one fails (the first failure is
   * thrown afterwards), so one broken plugin does not leak the others' state; the cache is removed
   * when all succeeded.
   */
  public void del(ObjectNode conflist, Attachment a) throws CniRunException, IOException, CniError {
    CniVersion v = CniVersion.parse(conflist.path("cniVersion").asText(""));
    ObjectNode cached = v.atLeast(CniVersion.V0_4_0) ? cached(conflist, a) : null;
    List<JsonNode> plugins = new ArrayList<>();
    conflist.path("plugins").forEach(plugins::add);
    CniRunException first = null;
    for (int i = plugins.size() - 1; i >= 0; i--) {
      try {
        exec("DEL", conflist, (ObjectNode) plugins.get(i), cached, a);
      } catch (CniRunException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
    Files.deleteIfExists(cacheFile(conflist, a));
  }

  /** STATUS of every plugin; like libcni, nothing to ask before cniVersion 1.1.0. */
  public void status(ObjectNode conflist) throws CniRunException, IOException, CniError {
    if (!CniVersion.parse(conflist.path("cniVersion").asText("")).atLeast(CniVersion.V1_1_0)) {
      return;
    }
    Attachment none = new Attachment("", Path.of(""), "", Map.of());
    for (JsonNode plugin : conflist.path("plugins")) {
      exec("STATUS", conflist, (ObjectNode) plugin, null, none);
    }
  }

  /** The plugin's VERSION answer. */
  public JsonNode version(String type) throws CniRunException, IOException, CniError {
    ObjectNode conf = JsonNodeFactory.instance.objectNode();
    conf.put("cniVersion", CniVersion.LATEST.toString());
    conf.put("type", type);
    String out = run(type, "VERSION", conf, new Attachment("", Path.of(""), "", Map.of()));
    JsonNode v = JsonTrees.read(out);
    return v == null ? MissingNode.getInstance() : v; // nothing printed, as readTree answered
  }

  private @Nullable ObjectNode cached(ObjectNode conflist, Attachment a) throws IOException {
    Path f = cacheFile(conflist, a);
    if (!Files.exists(f)) {
      return null;
    }
    JsonNode r = JsonTrees.read(Files.readAllBytes(f));
    return r != null && r.isObject() ? (ObjectNode) r : null;
  }

  private Path cacheFile(ObjectNode conflist, Attachment a) {
    return cacheDir.resolve(
        conflist.path("name").asText() + "-" + a.containerId() + "-" + a.ifname() + ".json");
  }

  private String exec(
      String command,
      ObjectNode conflist,
      ObjectNode plugin,
      @Nullable ObjectNode prevResult,
      Attachment a)
      throws CniRunException, IOException, CniError {
    ObjectNode conf = plugin.deepCopy();
    conf.set("name", conflist.get("name"));
    conf.set("cniVersion", conflist.get("cniVersion"));
    if (prevResult != null) {
      conf.set("prevResult", prevResult);
    } else {
      conf.remove("prevResult");
    }
    return run(plugin.path("type").asText(), command, conf, a);
  }

  private String run(String type, String command, ObjectNode conf, Attachment a)
      throws CniRunException, IOException, CniError {
    Path binary = find(type);
    List<String> cmd = new ArrayList<>(launcher);
    cmd.add(binary.toString());
    ProcessBuilder pb = new ProcessBuilder(cmd);
    Map<String, String> env = pb.environment();
    env.keySet().removeIf(k -> k.startsWith("CNI_"));
    env.put("CNI_COMMAND", command);
    env.put("CNI_CONTAINERID", a.containerId());
    env.put("CNI_NETNS", a.netns().toString());
    env.put("CNI_IFNAME", a.ifname());
    env.put("CNI_ARGS", a.cniArgs());
    env.put("CNI_PATH", String.join(":", binPath.stream().map(Path::toString).toList()));
    Process p = pb.start();
    CompletableFuture<byte[]> stdout = drain(p.getInputStream());
    CompletableFuture<byte[]> stderr = drain(p.getErrorStream());
    try (OutputStream in = p.getOutputStream()) {
      in.write(JsonTrees.bytes(conf));
    } catch (IOException e) {
      // A plugin that exits without reading stdin (VERSION) closes the pipe; its output decides.
    }
    try {
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        throw new CniRunException(
            type,
            new CniError(CniError.TRY_AGAIN_LATER, command + " timed out after " + timeout),
            "");
      }
      String out = new String(stdout.get(), StandardCharsets.UTF_8);
      String err = new String(stderr.get(), StandardCharsets.UTF_8);
      if (p.exitValue() != 0) {
        CniError e = null;
        try {
          JsonNode j = JsonTrees.read(out);
          e = j == null ? null : CniError.fromJson(j);
        } catch (IOException notJson) {
          // Fall through to the made-up error below.
        }
        if (e == null) {
          e =
              new CniError(
                  CniError.INTERNAL, command + " exited " + p.exitValue() + " with no error", out);
        }
        throw new CniRunException(type, e, err);
      }
      return out;
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted running " + type, e);
    } catch (ExecutionException e) {
      throw new IOException("reading " + type + "'s output", e.getCause());
    }
  }

  private Path find(String type) throws CniError {
    if (type.contains("/")) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "plugin type must be a name: " + type);
    }
    for (Path dir : binPath) {
      Path p = dir.resolve(type);
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    throw new CniError(
        CniError.INVALID_NETWORK_CONFIG, "failed to find plugin \"" + type + "\" in " + binPath);
  }

  private static CompletableFuture<byte[]> drain(InputStream s) {
    return CompletableFuture.supplyAsync(
        () -> {
          try (s) {
            return s.readAllBytes();
          } catch (IOException e) {
            return new byte[0];
          }
        });
  }
}
