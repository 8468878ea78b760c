package dev.nodemesh.model.load;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.nodemesh.model.config.ConfigException;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.InputSlot;
import dev.nodemesh.model.kind.Inputs;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.kind.Slot;
import dev.nodemesh.model.kind.YamlKind;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * Loads a {@link ConfigSnapshot} from a directory of Kubernetes-shaped YAML: every {@code *.yaml}
 * and {@code *.yml} file directly in it (sorted; dot-files skipped, so editor lock files and a
 * ConfigMap mount's {@code ..data} entries are not read twice), each holding any number of {@code
 * ---} documents. Every kind of the registry ({@link ResourceKinds.Yaml#ALL}: Pods, Services, the
 * mesh's policies, Gateway API routes and ReferenceGrants...) is read, in the API groups the
 * registry names, items of a {@code List} as if they were documents; other kinds (Namespace,
 * Deployment, EndpointSlice...) are ignored. The directory is accepted or rejected whole: every
 * problem found is reported in one {@link ConfigException}.
 *
 * <p>Limits: no readiness (every selected pod is an endpoint), no EndpointSlices, no
 * subdirectories, and line numbers only for YAML syntax errors, not for invalid field values.
 */
public final class ConfigLoader {
  private static final Logger log = LoggerFactory.getLogger(ConfigLoader.class);

  private static final ObjectReader YAML =
      YAMLMapper.builder()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .build()
          .readerFor(JsonNode.class);

  private ConfigLoader() {}

  /** Loads {@code dir} as version 1. */
  public static ConfigSnapshot load(Path dir) throws ConfigException {
    return load(dir, 1);
  }

  /** Loads {@code dir}; the snapshot gets {@code version}. */
  public static ConfigSnapshot load(Path dir, long version) throws ConfigException {
    if (!Files.isDirectory(dir)) {
      throw new ConfigException(List.of(dir + ": not a directory"));
    }
    List<String> errors = new ArrayList<>();
    List<Located<?>> found = new ArrayList<>();
    List<Path> files;
    try {
      files = yamlFiles(dir);
    } catch (IOException e) {
      throw new ConfigException(List.of(dir + ": cannot list: " + e));
    }
    for (Path file : files) {
      loadFile(file, errors, found);
    }
    check(found, errors);
    if (!errors.isEmpty()) {
      throw new ConfigException(errors);
    }
    // Resolved against the input-only records of every file (a route's cross-namespace
    // backendRefs against the ReferenceGrants), as the control plane does before it pushes.
    Inputs inputs =
        new Inputs() {
          @Override
          public <R> List<R> of(InputSlot<R> slot) {
            return values(found, slot);
          }
        };
    try {
      return ResourceKinds.snapshot(
          version,
          new ResourceKinds.Values() {
            @Override
            public <R> List<R> of(ResourceKind<?, R> kind) {
              List<R> resolved = new ArrayList<>();
              values(found, kind).forEach(r -> resolved.add(kind.resolve(r, inputs)));
              return kind.ordered(resolved);
            }
          });
    } catch (IllegalArgumentException e) {
      // The checks above should have caught it; still, a bad directory must never be a crash.
      throw new ConfigException(List.of(dir + ": inconsistent config: " + e.getMessage()));
    }
  }

  /** One parsed object of a file and the YAML kind it was. */
  public record Loaded<R>(YamlKind<R> kind, R value) {
    public NamespacedName id() {
      return kind.id(value);
    }

    /** The name its resource travels under. */
    public String resourceName() {
      return kind.resourceName(id());
    }
  }

  /**
   * One file's objects in document order, each checked on its own and against the others in the
   * file. For the control plane's local source, which accepts or ignores each file whole; rules
   * across files are the caller's.
   */
  public record FileContent(List<Loaded<?>> objects) {
    public FileContent {
      objects = List.copyOf(objects);
    }

    /** The records that feed {@code slot}, in document order (HTTPRoutes and GRPCRoutes mixed). */
    @SuppressWarnings("unchecked") // a Loaded whose kind feeds Slot<R> holds an R
    public <R> List<R> of(Slot<R> slot) {
      List<R> out = new ArrayList<>();
      for (Loaded<?> l : objects) {
        if (l.kind().slot().equals(slot)) {
          out.add((R) l.value());
        }
      }
      return out;
    }
  }

  /** Loads one file; every problem found is in the exception, prefixed with the file name. */
  public static FileContent loadFile(Path file) throws ConfigException {
    List<String> errors = new ArrayList<>();
    List<Located<?>> found = new ArrayList<>();
    loadFile(file, errors, found);
    check(found, errors);
    if (!errors.isEmpty()) {
      throw new ConfigException(errors);
    }
    List<Loaded<?>> objects = new ArrayList<>();
    found.forEach(l -> objects.add(l.loaded()));
    return new FileContent(objects);
  }

  /** The files a load reads, in the order it reads them; also what the watcher fingerprints. */
  public static List<Path> yamlFiles(Path dir) throws IOException {
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path p : entries) {
        String name = p.getFileName().toString();
        if (!name.startsWith(".")
            && (name.endsWith(".yaml") || name.endsWith(".yml"))
            && Files.isRegularFile(p)) {
          files.add(p);
        }
      }
    }
    files.sort(Comparator.comparing(p -> p.getFileName().toString()));
    return files;
  }

  /** An object, its kind and the file it came from, so a duplicate can name both files. */
  private record Located<R>(YamlKind<R> kind, R value, String file) {
    Loaded<R> loaded() {
      return new Loaded<>(kind, value);
    }

    NamespacedName id() {
      return kind.id(value);
    }
  }

  /** The objects of {@code found} that feed {@code slot}, in the order found. */
  @SuppressWarnings("unchecked") // a Located whose kind feeds Slot<R> holds an R
  private static <R> List<Located<R>> located(List<Located<?>> found, Slot<R> slot) {
    List<Located<R>> out = new ArrayList<>();
    for (Located<?> l : found) {
      if (l.kind().slot().equals(slot)) {
        out.add((Located<R>) l);
      }
    }
    return out;
  }

  private static <R> List<R> values(List<Located<?>> found, Slot<R> slot) {
    List<R> out = new ArrayList<>();
    located(found, slot).forEach(l -> out.add(l.value()));
    return out;
  }

  private static void loadFile(Path path, List<String> errors, List<Located<?>> found) {
    String file = path.getFileName().toString();
    List<JsonNode> docs = new ArrayList<>();
    try (MappingIterator<JsonNode> it = YAML.readValues(path.toFile())) {
      while (it.hasNextValue()) {
        docs.add(it.nextValue());
      }
    } catch (JsonProcessingException e) {
      errors.add(file + ": " + syntaxError(e));
      return;
    } catch (IOException e) {
      errors.add(file + ": cannot read: " + e);
      return;
    }
    for (int i = 0; i < docs.size(); i++) {
      object(docs.get(i), "document " + (i + 1), file, errors, found);
    }
  }

  private static void object(
      @Nullable JsonNode doc,
      String label,
      String file,
      List<String> errors,
      List<Located<?>> found) {
    if (doc == null || doc.isNull() || doc.isMissingNode()) {
      return; // an empty document, e.g. a trailing "---"
    }
    if (!doc.isObject()) {
      errors.add(file + ": " + label + ": expected a Kubernetes object (a mapping with kind)");
      return;
    }
    String kind = doc.path("kind").asText("");
    if (kind.equals("List")) {
      JsonNode items = doc.path("items");
      for (int i = 0; i < items.size(); i++) {
        object(items.get(i), label + " items[" + i + "]", file, errors, found);
      }
      return;
    }
    if (kind.isEmpty()) {
      errors.add(file + ": " + label + ": kind: is required");
      return;
    }
    YamlKind<?> yamlKind = ResourceKinds.Yaml.named(kind);
    if (yamlKind == null) {
      log.debug("{}: {}: ignoring kind {}", file, label, kind);
    } else if (!yamlKind.accepts(doc.path("apiVersion").asText(""))) {
      log.debug("{}: {}: ignoring a {} of another API group", file, label, kind);
    } else {
      parse(yamlKind, doc, label, file, errors, found);
    }
  }

  private static <R> void parse(
      YamlKind<R> kind,
      JsonNode doc,
      String label,
      String file,
      List<String> errors,
      List<Located<?>> found) {
    R value = kind.parse(file, errors, doc, label);
    if (value != null) {
      found.add(new Located<>(kind, value, file));
    }
  }

  /**
   * The rules across objects: one object per kind and namespace/name (a second one is an error
   * naming both files; HTTPRoutes and GRPCRoutes are checked per kind, as Kubernetes lets them
   * share a name), then, over the first of each name, unique pod IPs and Service VIPs and at most
   * one TrafficPolicy per Service.
   */
  private static void check(List<Located<?>> found, List<String> errors) {
    List<Located<?>> firsts = new ArrayList<>();
    for (Slot<?> slot : ResourceKinds.SLOTS) {
      Map<String, Located<?>> names = new HashMap<>();
      for (Located<?> r : located(found, slot)) {
        String what = r.kind().kind() + " " + r.id();
        Located<?> other = names.putIfAbsent(what, r);
        if (other == null) {
          firsts.add(r);
        } else {
          errors.add(
              r.file()
                  + ": "
                  + what
                  + ": metadata.name: duplicate of the "
                  + r.kind().kind()
                  + " in "
                  + other.file());
        }
      }
    }
    checkAddresses(
        located(firsts, ResourceKinds.WORKLOAD), located(firsts, ResourceKinds.SERVICE), errors);
    checkTrafficPolicyTargets(located(firsts, ResourceKinds.TRAFFIC_POLICY), errors);
  }

  /** At most one TrafficPolicy per Service (two would be ambiguous). */
  private static void checkTrafficPolicyTargets(
      List<Located<TrafficPolicy>> policies, List<String> errors) {
    Map<NamespacedName, Located<TrafficPolicy>> targets = new HashMap<>();
    for (Located<TrafficPolicy> p : policies) {
      Located<TrafficPolicy> other = targets.putIfAbsent(p.value().target(), p);
      if (other != null) {
        errors.add(
            p.file()
                + ": TrafficPolicy "
                + p.value().id()
                + ": spec.targetRef.name: Service "
                + p.value().target()
                + " already has TrafficPolicy "
                + other.value().id()
                + " (in "
                + other.file()
                + ")");
      }
    }
  }

  private static String syntaxError(JsonProcessingException e) {
    // SnakeYAML's problem mark is where the error is; Jackson's location is sometimes the start
    // of the enclosing construct (a tab in line 2 is reported at line 1).
    int lineNr = -1;
    if (e.getCause() instanceof MarkedYAMLException marked && marked.getProblemMark() != null) {
      lineNr = marked.getProblemMark().getLine() + 1;
    } else if (e.getLocation() != null) {
      lineNr = e.getLocation().getLineNr();
    }
    String line = lineNr > 0 ? "line " + lineNr + ": " : "";
    // SnakeYAML's message interleaves what went wrong with indented source excerpts and
    // positions; keep the unindented lines, which are the explanation, on one line.
    StringBuilder reason = new StringBuilder();
    for (String part : e.getOriginalMessage().lines().toList()) {
      if (!part.isBlank() && !Character.isWhitespace(part.charAt(0))) {
        reason.append(reason.length() == 0 ? "" : "; ").append(part.strip());
      }
    }
    return line + "not valid YAML: " + reason;
  }

  /** Unique pod IPs and Service VIPs, across pods and services (names are already unique). */
  // Identity is the point: "the same object listed the IP twice" versus "another object has it".
  @SuppressWarnings("ReferenceEquality")
  private static void checkAddresses(
      List<Located<Workload>> pods, List<Located<MeshService>> services, List<String> errors) {
    Map<InetAddress, Located<Workload>> podIps = new HashMap<>();
    for (Located<Workload> p : pods) {
      String where = p.file() + ": Pod " + p.value().id();
      for (InetAddress ip : p.value().ips()) {
        Located<Workload> other = podIps.putIfAbsent(ip, p);
        if (other == p) {
          errors.add(where + ": status.podIPs: " + ip.getHostAddress() + " is listed twice");
        } else if (other != null) {
          errors.add(
              where
                  + ": status.podIPs: "
                  + ip.getHostAddress()
                  + " is already the IP of Pod "
                  + other.value().id()
                  + " in "
                  + other.file());
        }
      }
    }
    Map<InetAddress, Located<MeshService>> vips = new HashMap<>();
    for (Located<MeshService> s : services) {
      String where = s.file() + ": Service " + s.value().id();
      for (InetAddress vip : s.value().vips()) {
        String ip = vip.getHostAddress();
        Located<MeshService> other = vips.putIfAbsent(vip, s);
        Located<Workload> pod = podIps.get(vip);
        if (other == s) {
          errors.add(where + ": spec.clusterIPs: " + ip + " is listed twice");
        } else if (other != null) {
          errors.add(
              where
                  + ": spec.clusterIPs: "
                  + ip
                  + " is already the cluster IP of Service "
                  + other.value().id()
                  + " in "
                  + other.file());
        } else if (pod != null) {
          errors.add(
              where
                  + ": spec.clusterIPs: "
                  + ip
                  + " is already the IP of Pod "
                  + pod.value().id()
                  + " in "
                  + pod.file());
        }
      }
    }
  }
}
