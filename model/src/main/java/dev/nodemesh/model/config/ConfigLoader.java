package dev.nodemesh.model.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
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
import java.util.function.Function;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * Loads a {@link ConfigSnapshot} from a directory of Kubernetes-shaped YAML: every {@code *.yaml}
 * and {@code *.yml} file directly in it (sorted; dot-files skipped, so editor lock files and a
 * ConfigMap mount's {@code ..data} entries are not read twice), each holding any number of {@code
 * ---} documents. Pods, Services, {@code security.nodemesh.dev/v1alpha1} AuthorizationPolicies and
 * PeerAuthentications, {@code traffic.nodemesh.dev/v1alpha1} TrafficPolicies ({@link
 * TrafficPolicyParser}) and HTTPFaults, and Gateway API HTTPRoutes and GRPCRoutes are read, items
 * of a {@code List} as if they were documents; other kinds (Namespace, Deployment,
 * EndpointSlice...) are ignored. The directory is accepted or rejected whole: every problem found
 * is reported in one {@link ConfigException}.
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
    Found found = new Found();
    List<Located<Workload>> pods = found.pods;
    List<Located<MeshService>> services = found.services;
    List<Path> files;
    try {
      files = yamlFiles(dir);
    } catch (IOException e) {
      throw new ConfigException(List.of(dir + ": cannot list: " + e));
    }
    for (Path file : files) {
      loadFile(file, errors, found);
    }
    checkUnique(pods, services, errors);
    checkUniquePolicies(found, errors);
    checkUniqueRoutes(found.routes, errors);
    checkTrafficPolicies(found.trafficPolicies, errors);
    checkUniqueNames("HTTPFault", found.faults, HttpFault::id, errors);
    checkUniqueNames("ReferenceGrant", found.grants, ReferenceGrant::id, errors);
    if (!errors.isEmpty()) {
      throw new ConfigException(errors);
    }
    List<Workload> workloads = new ArrayList<>();
    pods.forEach(p -> workloads.add(p.value()));
    workloads.sort(Comparator.comparing(Workload::namespace).thenComparing(Workload::name));
    List<MeshService> svcs = new ArrayList<>();
    services.forEach(s -> svcs.add(s.value()));
    svcs.sort(Comparator.comparing(MeshService::namespace).thenComparing(MeshService::name));
    try {
      return new ConfigSnapshot(
          version,
          workloads,
          svcs,
          values(found.policies),
          values(found.peerAuthns),
          // Cross-namespace backendRefs checked against the ReferenceGrants of every file, as the
          // control plane does before it pushes a route.
          ReferenceGrant.applyAll(values(found.routes), values(found.grants)),
          values(found.trafficPolicies),
          values(found.faults));
    } catch (IllegalArgumentException e) {
      // The checks above should have caught it; still, a bad directory must never be a crash.
      throw new ConfigException(List.of(dir + ": inconsistent config: " + e.getMessage()));
    }
  }

  /**
   * One file's Pods and Services, each checked on its own and against the others in the file. For
   * the control plane's local source, which accepts or ignores each file whole; rules across files
   * are the caller's.
   */
  public record FileContent(
      List<Workload> workloads,
      List<MeshService> services,
      List<AuthorizationPolicy> authorizationPolicies,
      List<PeerAuthentication> peerAuthentications,
      List<HttpRoute> httpRoutes,
      List<TrafficPolicy> trafficPolicies,
      List<HttpFault> httpFaults,
      List<ReferenceGrant> referenceGrants) {
    public FileContent {
      referenceGrants = List.copyOf(referenceGrants);
      trafficPolicies = List.copyOf(trafficPolicies);
      workloads = List.copyOf(workloads);
      services = List.copyOf(services);
      authorizationPolicies = List.copyOf(authorizationPolicies);
      peerAuthentications = List.copyOf(peerAuthentications);
      httpRoutes = List.copyOf(httpRoutes);
      httpFaults = List.copyOf(httpFaults);
    }

    /** Without ReferenceGrants. */
    public FileContent(
        List<Workload> workloads,
        List<MeshService> services,
        List<AuthorizationPolicy> authorizationPolicies,
        List<PeerAuthentication> peerAuthentications,
        List<HttpRoute> httpRoutes,
        List<TrafficPolicy> trafficPolicies,
        List<HttpFault> httpFaults) {
      this(
          workloads,
          services,
          authorizationPolicies,
          peerAuthentications,
          httpRoutes,
          trafficPolicies,
          httpFaults,
          List.of());
    }

    /** Only Pods, Services, policies and HTTP routes. */
    public FileContent(
        List<Workload> workloads,
        List<MeshService> services,
        List<AuthorizationPolicy> authorizationPolicies,
        List<PeerAuthentication> peerAuthentications,
        List<HttpRoute> httpRoutes) {
      this(
          workloads,
          services,
          authorizationPolicies,
          peerAuthentications,
          httpRoutes,
          List.of(),
          List.of());
    }

    public FileContent(List<Workload> workloads, List<MeshService> services) {
      this(workloads, services, List.of(), List.of(), List.of());
    }
  }

  /** Loads one file; every problem found is in the exception, prefixed with the file name. */
  public static FileContent loadFile(Path file) throws ConfigException {
    List<String> errors = new ArrayList<>();
    Found found = new Found();
    loadFile(file, errors, found);
    checkUnique(found.pods, found.services, errors);
    checkUniquePolicies(found, errors);
    checkUniqueRoutes(found.routes, errors);
    checkTrafficPolicies(found.trafficPolicies, errors);
    checkUniqueNames("HTTPFault", found.faults, HttpFault::id, errors);
    checkUniqueNames("ReferenceGrant", found.grants, ReferenceGrant::id, errors);
    if (!errors.isEmpty()) {
      throw new ConfigException(errors);
    }
    return new FileContent(
        values(found.pods),
        values(found.services),
        values(found.policies),
        values(found.peerAuthns),
        values(found.routes),
        values(found.trafficPolicies),
        values(found.faults),
        values(found.grants));
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

  /** An object and the file it came from, so a duplicate can name both files. */
  private record Located<T>(T value, String file) {}

  /** What a load found so far, by kind. */
  private static final class Found {
    final List<Located<Workload>> pods = new ArrayList<>();
    final List<Located<MeshService>> services = new ArrayList<>();
    final List<Located<AuthorizationPolicy>> policies = new ArrayList<>();
    final List<Located<PeerAuthentication>> peerAuthns = new ArrayList<>();
    final List<Located<HttpRoute>> routes = new ArrayList<>();
    final List<Located<TrafficPolicy>> trafficPolicies = new ArrayList<>();
    final List<Located<HttpFault>> faults = new ArrayList<>();
    final List<Located<ReferenceGrant>> grants = new ArrayList<>();
  }

  private static <T> List<T> values(List<Located<T>> located) {
    List<T> out = new ArrayList<>();
    located.forEach(l -> out.add(l.value()));
    return out;
  }

  private static void loadFile(Path path, List<String> errors, Found found) {
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
    ResourceParser parser = new ResourceParser(file, errors);
    for (int i = 0; i < docs.size(); i++) {
      object(docs.get(i), "document " + (i + 1), file, parser, errors, found);
    }
  }

  private static void object(
      @Nullable JsonNode doc,
      String label,
      String file,
      ResourceParser parser,
      List<String> errors,
      Found found) {
    if (doc == null || doc.isNull() || doc.isMissingNode()) {
      return; // an empty document, e.g. a trailing "---"
    }
    if (!doc.isObject()) {
      errors.add(file + ": " + label + ": expected a Kubernetes object (a mapping with kind)");
      return;
    }
    String kind = doc.path("kind").asText("");
    boolean ours = ResourceParser.SECURITY_API_VERSION.equals(doc.path("apiVersion").asText(""));
    switch (kind) {
      case "Pod" -> {
        Workload w = parser.pod(doc, label);
        if (w != null) {
          found.pods.add(new Located<>(w, file));
        }
      }
      case "Service" -> {
        MeshService s = parser.service(doc, label);
        if (s != null) {
          found.services.add(new Located<>(s, file));
        }
      }
      // Istio's kinds of the same names (security.istio.io) are not ours: ignored like any other.
      case "AuthorizationPolicy" -> {
        AuthorizationPolicy p = ours ? parser.authorizationPolicy(doc, label) : null;
        if (p != null) {
          found.policies.add(new Located<>(p, file));
        }
      }
      case "PeerAuthentication" -> {
        PeerAuthentication p = ours ? parser.peerAuthentication(doc, label) : null;
        if (p != null) {
          found.peerAuthns.add(new Located<>(p, file));
        }
      }
      case "HTTPRoute" -> {
        if (!doc.path("apiVersion").asText("").startsWith("gateway.networking.k8s.io/")) {
          log.debug("{}: {}: ignoring an HTTPRoute of another API group", file, label);
          return;
        }
        HttpRoute r = parser.httpRoute(doc, label);
        if (r != null) {
          found.routes.add(new Located<>(r, file));
        }
      }
      case "TrafficPolicy" -> {
        if (!TrafficPolicy.API_VERSION.equals(doc.path("apiVersion").asText(""))) {
          log.debug("{}: {}: ignoring a TrafficPolicy of another API group", file, label);
          return;
        }
        TrafficPolicy p = new TrafficPolicyParser(file, errors).parse(doc, label);
        if (p != null) {
          found.trafficPolicies.add(new Located<>(p, file));
        }
      }
      case "GRPCRoute" -> {
        if (!doc.path("apiVersion").asText("").startsWith("gateway.networking.k8s.io/")) {
          log.debug("{}: {}: ignoring a GRPCRoute of another API group", file, label);
          return;
        }
        HttpRoute r = parser.grpcRoute(doc, label);
        if (r != null) {
          found.routes.add(new Located<>(r, file));
        }
      }
      case "HTTPFault" -> {
        if (!doc.path("apiVersion").asText("").startsWith(ResourceParser.TRAFFIC_GROUP + "/")) {
          log.debug("{}: {}: ignoring an HTTPFault of another API group", file, label);
          return;
        }
        HttpFault f = parser.httpFault(doc, label);
        if (f != null) {
          found.faults.add(new Located<>(f, file));
        }
      }
      case "ReferenceGrant" -> {
        if (!doc.path("apiVersion").asText("").startsWith(ReferenceGrant.GATEWAY_GROUP + "/")) {
          log.debug("{}: {}: ignoring a ReferenceGrant of another API group", file, label);
          return;
        }
        ReferenceGrant g = parser.referenceGrant(doc, label);
        if (g != null) {
          found.grants.add(new Located<>(g, file));
        }
      }
      case "List" -> {
        JsonNode items = doc.path("items");
        for (int i = 0; i < items.size(); i++) {
          String itemLabel = label + " items[" + i + "]";
          object(items.get(i), itemLabel, file, parser, errors, found);
        }
      }
      case "" -> errors.add(file + ": " + label + ": kind: is required");
      default -> log.debug("{}: {}: ignoring kind {}", file, label, kind);
    }
  }

  private static void checkUniqueRoutes(List<Located<HttpRoute>> routes, List<String> errors) {
    Map<String, Located<HttpRoute>> names = new HashMap<>();
    for (Located<HttpRoute> r : routes) {
      String kind = r.value().kind();
      Located<HttpRoute> other = names.putIfAbsent(kind + " " + r.value().id(), r);
      if (other != null) {
        errors.add(
            r.file()
                + ": "
                + kind
                + " "
                + r.value().id()
                + ": metadata.name: duplicate of the "
                + kind
                + " in "
                + other.file());
      }
    }
  }

  /** One {@code kind} per namespace/name across all files; a second one is an error naming both. */
  private static <T> void checkUniqueNames(
      String kind,
      List<Located<T>> resources,
      Function<T, NamespacedName> id,
      List<String> errors) {
    Map<NamespacedName, Located<T>> names = new HashMap<>();
    for (Located<T> r : resources) {
      NamespacedName name = id.apply(r.value());
      Located<T> other = names.putIfAbsent(name, r);
      if (other != null) {
        errors.add(
            r.file()
                + ": "
                + kind
                + " "
                + name
                + ": metadata.name: duplicate of the "
                + kind
                + " in "
                + other.file());
      }
    }
  }

  /** Unique names, and at most one TrafficPolicy per Service (two would be ambiguous). */
  private static void checkTrafficPolicies(
      List<Located<TrafficPolicy>> policies, List<String> errors) {
    Map<NamespacedName, Located<TrafficPolicy>> names = new HashMap<>();
    Map<NamespacedName, Located<TrafficPolicy>> targets = new HashMap<>();
    for (Located<TrafficPolicy> p : policies) {
      String where = p.file() + ": TrafficPolicy " + p.value().id();
      Located<TrafficPolicy> other = names.putIfAbsent(p.value().id(), p);
      if (other != null) {
        errors.add(where + ": metadata.name: duplicate of the TrafficPolicy in " + other.file());
        continue;
      }
      other = targets.putIfAbsent(p.value().target(), p);
      if (other != null) {
        errors.add(
            where
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

  private static void checkUniquePolicies(Found found, List<String> errors) {
    Map<NamespacedName, Located<AuthorizationPolicy>> policies = new HashMap<>();
    for (Located<AuthorizationPolicy> p : found.policies) {
      Located<AuthorizationPolicy> other = policies.putIfAbsent(p.value().id(), p);
      if (other != null) {
        errors.add(
            p.file()
                + ": AuthorizationPolicy "
                + p.value().id()
                + ": metadata.name: duplicate of the AuthorizationPolicy in "
                + other.file());
      }
    }
    Map<NamespacedName, Located<PeerAuthentication>> peerAuthns = new HashMap<>();
    for (Located<PeerAuthentication> p : found.peerAuthns) {
      Located<PeerAuthentication> other = peerAuthns.putIfAbsent(p.value().id(), p);
      if (other != null) {
        errors.add(
            p.file()
                + ": PeerAuthentication "
                + p.value().id()
                + ": metadata.name: duplicate of the PeerAuthentication in "
                + other.file());
      }
    }
  }

  /** Cross-object rules: unique names per namespace and kind, unique pod IPs and VIPs. */
  // Identity is the point: "the same object listed the IP twice" versus "another object has it".
  @SuppressWarnings("ReferenceEquality")
  private static void checkUnique(
      List<Located<Workload>> pods, List<Located<MeshService>> services, List<String> errors) {
    Map<NamespacedName, Located<Workload>> podNames = new HashMap<>();
    Map<InetAddress, Located<Workload>> podIps = new HashMap<>();
    for (Located<Workload> p : pods) {
      String where = p.file() + ": Pod " + p.value().id();
      Located<Workload> other = podNames.putIfAbsent(p.value().id(), p);
      if (other != null) {
        errors.add(where + ": metadata.name: duplicate of the Pod in " + other.file());
        continue;
      }
      for (InetAddress ip : p.value().ips()) {
        other = podIps.putIfAbsent(ip, p);
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
    Map<NamespacedName, Located<MeshService>> serviceNames = new HashMap<>();
    Map<InetAddress, Located<MeshService>> vips = new HashMap<>();
    for (Located<MeshService> s : services) {
      String where = s.file() + ": Service " + s.value().id();
      Located<MeshService> other = serviceNames.putIfAbsent(s.value().id(), s);
      if (other != null) {
        errors.add(where + ": metadata.name: duplicate of the Service in " + other.file());
        continue;
      }
      for (InetAddress vip : s.value().vips()) {
        String ip = vip.getHostAddress();
        other = vips.putIfAbsent(vip, s);
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
