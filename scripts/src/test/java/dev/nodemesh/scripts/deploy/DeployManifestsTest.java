package dev.nodemesh.scripts.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.nodemesh.cni.plugin.PluginConfig;
import dev.nodemesh.control.ca.TrustBundlePublisher;
import dev.nodemesh.control.source.KubernetesSource;
import dev.nodemesh.control.status.RouteStatusWriter;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.scripts.cli.Main;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParseResult;

/**
 * The Kubernetes manifests and the Helm chart under {@code deploy/}, checked against the code they
 * deploy: every object parses into fabric8's typed model with no unknown field and is created on a
 * mock API server; RBAC is exactly what the control plane's informers read; every container's args
 * parse with the real picocli commands; ports, mounts and capabilities match the code's defaults;
 * the chart with its default values renders exactly {@code deploy/kubernetes/}.
 */
@EnableKubernetesMockClient(crud = true)
class DeployManifestsTest {
  static KubernetesClient client;
  static KubernetesMockServer server;

  static final Path DEPLOY = Path.of("..", "deploy");
  static final Path PLAIN = DEPLOY.resolve("kubernetes");
  static final Path CHART = DEPLOY.resolve("helm/nodemesh");
  static final String NS = "nodemesh-system";
  static final String SECURITY_GROUP = "security.nodemesh.dev";

  /** The policy CRDs the authz work adds; granted before control watches them (see rbac test). */
  static final Set<String> POLICY_RESOURCES =
      Set.of("authorizationpolicies", "peerauthentications");

  static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  /** Every object of every manifest file, by file. */
  static final Map<Path, List<HasMetadata>> objects = new LinkedHashMap<>();

  @BeforeAll
  static void load() throws IOException {
    for (Path f : manifestFiles()) {
      List<HasMetadata> docs = new ArrayList<>();
      for (String doc : documents(Files.readString(f))) {
        Object o = client.getKubernetesSerialization().unmarshal(doc);
        assertTrue(o instanceof HasMetadata, f + ": not a Kubernetes object: " + o);
        docs.add((HasMetadata) o);
      }
      assertFalse(docs.isEmpty(), f + " is empty");
      objects.put(f, docs);
    }
  }

  static List<Path> manifestFiles() throws IOException {
    List<Path> out = new ArrayList<>();
    for (Path dir :
        List.of(
            PLAIN,
            PLAIN.resolve("monitoring"),
            DEPLOY.resolve("uninstall"),
            DEPLOY.resolve("crds"))) {
      out.addAll(yamlFiles(dir));
    }
    return out;
  }

  static List<Path> yamlFiles(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
  }

  /** YAML documents of a file (our files separate them with a "---" line). */
  static List<String> documents(String text) {
    List<String> out = new ArrayList<>();
    for (String d : text.split("(?m)^---\\s*$")) {
      if (d.lines().anyMatch(l -> !l.isBlank() && !l.strip().startsWith("#"))) {
        out.add(d);
      }
    }
    return out;
  }

  static <T extends HasMetadata> List<T> all(Class<T> type) {
    return objects.values().stream()
        .flatMap(List::stream)
        .filter(type::isInstance)
        .map(type::cast)
        .toList();
  }

  static <T extends HasMetadata> T one(Class<T> type, String name) {
    List<T> found = all(type).stream().filter(o -> o.getMetadata().getName().equals(name)).toList();
    assertEquals(1, found.size(), type.getSimpleName() + " " + name);
    return found.get(0);
  }

  static DaemonSet nodeDaemonSet() {
    return one(DaemonSet.class, "nodemesh-node");
  }

  static Deployment controlDeployment() {
    return one(Deployment.class, "nodemesh-control");
  }

  static Container container(PodSpec pod, String name) {
    return pod.getContainers().stream()
        .filter(c -> c.getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no container " + name));
  }

  // ---- parsing ----

  @Test
  void everyObjectIsTypedWithNoUnknownFieldAndNamespacedInNodemeshSystem() throws Exception {
    List<String> unknown = new ArrayList<>();
    for (Map.Entry<Path, List<HasMetadata>> e : objects.entrySet()) {
      for (HasMetadata o : e.getValue()) {
        String where =
            e.getKey().getFileName() + " " + o.getKind() + "/" + o.getMetadata().getName();
        if (o instanceof GenericKubernetesResource) {
          // Only the Prometheus Operator's kinds have no fabric8 model here.
          assertTrue(
              o.getApiVersion().equals("monitoring.coreos.com/v1"),
              where + " did not parse into a typed object");
          continue;
        }
        unknownFields(o, where, unknown);
        boolean clusterScoped =
            o instanceof Namespace
                || o instanceof ClusterRole
                || o instanceof ClusterRoleBinding
                || o instanceof CustomResourceDefinition;
        assertEquals(clusterScoped ? null : NS, o.getMetadata().getNamespace(), where);
      }
    }
    assertEquals(List.of(), unknown, "fields the Kubernetes API does not know (typos?)");
  }

  /** Fields that landed in a model object's additionalProperties: the API would reject them. */
  static void unknownFields(Object o, String path, List<String> out) throws Exception {
    if (o instanceof Map<?, ?> m) {
      for (Map.Entry<?, ?> e : m.entrySet()) {
        unknownFields(e.getValue(), path + "." + e.getKey(), out);
      }
      return;
    }
    if (o instanceof Collection<?> c) {
      int i = 0;
      for (Object x : c) {
        unknownFields(x, path + "[" + i++ + "]", out);
      }
      return;
    }
    if (o == null || !o.getClass().getPackageName().startsWith("io.fabric8.kubernetes.api.model")) {
      return;
    }
    for (Method m : o.getClass().getMethods()) {
      if (m.getParameterCount() != 0
          || !m.getName().startsWith("get")
          || Modifier.isStatic(m.getModifiers())
          || m.getDeclaringClass() == Object.class) {
        continue;
      }
      Object v = m.invoke(o);
      if (m.getName().equals("getAdditionalProperties")) {
        if (v instanceof Map<?, ?> extra && !extra.isEmpty()) {
          out.add(path + ": " + extra.keySet());
        }
      } else {
        unknownFields(v, path + "." + m.getName().substring(3), out);
      }
    }
  }

  @Test
  void everyObjectIsCreatedOnTheMockApiServer() {
    // Cluster-scoped and namespace first, as kubectl apply of the sorted files does.
    for (HasMetadata o : objects.values().stream().flatMap(List::stream).toList()) {
      if (o instanceof GenericKubernetesResource g) {
        String kind = g.getKind();
        ResourceDefinitionContext ctx =
            new ResourceDefinitionContext.Builder()
                .withGroup("monitoring.coreos.com")
                .withVersion("v1")
                .withKind(kind)
                .withPlural(kind.toLowerCase(java.util.Locale.ROOT) + "s")
                .withNamespaced(true)
                .build();
        client
            .genericKubernetesResources(ctx)
            .inNamespace(NS)
            .resource(g)
            .createOr(r -> r.update());
        assertNotNull(
            client
                .genericKubernetesResources(ctx)
                .inNamespace(NS)
                .withName(g.getMetadata().getName())
                .get());
      } else {
        client.resource(o).createOr(r -> r.update());
        assertNotNull(client.resource(o).get(), o.getKind() + " " + o.getMetadata().getName());
      }
    }
  }

  // ---- RBAC ----

  record Grant(String group, String resource, String verb, String name) {}

  static Set<Grant> grants(List<PolicyRule> rules) {
    Set<Grant> out = new TreeSet<>(java.util.Comparator.comparing(Grant::toString));
    for (PolicyRule r : rules) {
      assertTrue(r.getNonResourceURLs() == null || r.getNonResourceURLs().isEmpty());
      List<String> names =
          r.getResourceNames() == null || r.getResourceNames().isEmpty()
              ? List.of("")
              : r.getResourceNames();
      for (String g : r.getApiGroups()) {
        for (String res : r.getResources()) {
          for (String v : r.getVerbs()) {
            for (String n : names) {
              assertFalse(g.equals("*") || res.equals("*") || v.equals("*"), "wildcard in " + r);
              out.add(new Grant(g, res, v, n));
            }
          }
        }
      }
    }
    return out;
  }

  /**
   * Runs the real KubernetesSource against the mock API server and records which resources its
   * informers list and watch: the ClusterRole must grant exactly get/list/watch on those (plus the
   * policy CRDs, see below), create on TokenReviews, and nothing else.
   */
  @Test
  void controlRbacIsExactlyWhatItsInformersReadPlusTokenReviewsAndTheCaSecretAndConfigMap()
      throws Exception {
    while (server.takeRequest(50, TimeUnit.MILLISECONDS) != null) {
      // Drop the requests of other tests.
    }
    Set<String> watched = new TreeSet<>();
    ExecutorService executor = Executors.newSingleThreadExecutor();
    try (KubernetesSource source = new KubernetesSource(client, 0)) {
      source.start(new ResourceStore(System::nanoTime, () -> {}), executor);
      for (int i = 0; i < 500 && !source.ready(); i++) {
        Thread.sleep(20);
      }
      assertTrue(source.ready(), "informers never synced");
      for (var r = server.takeRequest(200, TimeUnit.MILLISECONDS);
          r != null;
          r = server.takeRequest(200, TimeUnit.MILLISECONDS)) {
        assertEquals("GET", r.getMethod(), r.getPath());
        watched.add(groupResource(r.getPath()));
      }
    } finally {
      executor.shutdownNow();
    }
    assertTrue(
        watched.containsAll(Set.of("/pods", "/services", "/namespaces")), watched.toString());

    Set<Grant> want = new TreeSet<>(java.util.Comparator.comparing(Grant::toString));
    Set<String> reads = new TreeSet<>(watched);
    for (String p : POLICY_RESOURCES) {
      // Granted ahead of the informers the authz work adds to KubernetesSource; once they exist
      // this line adds nothing and the check is exact for them too.
      reads.add(SECURITY_GROUP + "/" + p);
    }
    for (String gr : reads) {
      String[] s = gr.split("/", 2);
      for (String v : List.of("get", "list", "watch")) {
        want.add(new Grant(s[0], s[1], v, ""));
      }
    }
    want.add(new Grant("authentication.k8s.io", "tokenreviews", "create", ""));
    // RouteStatusWriter: route status through the status subresource (update; patch for kubectl
    // and future server-side apply), never the route itself.
    for (String r : List.of("httproutes/status", "grpcroutes/status")) {
      for (String v : List.of("update", "patch")) {
        want.add(new Grant("gateway.networking.k8s.io", r, v, ""));
      }
    }
    // KubernetesSource: the enrolment annotation (nodemesh.dev/enrolled-on) on pods.
    want.add(new Grant("", "pods", "patch", ""));
    assertEquals(want, grants(one(ClusterRole.class, "nodemesh-control").getRules()));

    Role ca = one(Role.class, "nodemesh-control-ca");
    assertEquals(
        Set.of(
            new Grant("", "secrets", "get", "nodemesh-ca-root"),
            new Grant("", "secrets", "update", "nodemesh-ca-root"),
            new Grant("", "secrets", "create", ""),
            new Grant("", "configmaps", "get", "nodemesh-ca-root"),
            new Grant("", "configmaps", "update", "nodemesh-ca-root"),
            new Grant("", "configmaps", "create", "")),
        Set.copyOf(grants(ca.getRules())));

    String sa = controlDeployment().getSpec().getTemplate().getSpec().getServiceAccountName();
    one(ServiceAccount.class, sa);
    ClusterRoleBinding crb = one(ClusterRoleBinding.class, "nodemesh-control");
    assertEquals("nodemesh-control", crb.getRoleRef().getName());
    assertEquals(sa, crb.getSubjects().get(0).getName());
    assertEquals(NS, crb.getSubjects().get(0).getNamespace());
    RoleBinding rb = one(RoleBinding.class, "nodemesh-control-ca");
    assertEquals("Role", rb.getRoleRef().getKind());
    assertEquals(ca.getMetadata().getName(), rb.getRoleRef().getName());
    assertEquals(sa, rb.getSubjects().get(0).getName());
    // The one Lease deciding which replica writes route status.
    Role status = one(Role.class, "nodemesh-control-route-status");
    assertEquals(NS, status.getMetadata().getNamespace());
    assertEquals(
        Set.of(
            new Grant("coordination.k8s.io", "leases", "get", RouteStatusWriter.LEASE),
            new Grant("coordination.k8s.io", "leases", "update", RouteStatusWriter.LEASE),
            new Grant("coordination.k8s.io", "leases", "create", "")),
        Set.copyOf(grants(status.getRules())));
    RoleBinding srb = one(RoleBinding.class, "nodemesh-control-route-status");
    assertEquals(status.getMetadata().getName(), srb.getRoleRef().getName());
    assertEquals(sa, srb.getSubjects().get(0).getName());
    // Nothing else in the deployment has any RBAC.
    assertEquals(1, all(ClusterRole.class).size());
    assertEquals(2, all(Role.class).size());
  }

  /** {@code /api/v1/pods?watch=true} → "/pods", {@code /apis/g/v1/namespaces/x/r} → "g/r". */
  static String groupResource(String path) {
    String[] seg = URI.create("http://x" + path).getPath().substring(1).split("/");
    String group;
    int rest;
    if (seg[0].equals("api")) {
      group = "";
      rest = 2;
    } else {
      group = seg[1];
      rest = 3;
    }
    String resource =
        seg.length > rest + 2 && seg[rest].equals("namespaces") ? seg[rest + 2] : seg[rest];
    return group + "/" + resource;
  }

  @Test
  void everyCrdInDeployCrdsIsReadableByTheControlPlane() {
    Set<Grant> granted = grants(one(ClusterRole.class, "nodemesh-control").getRules());
    for (CustomResourceDefinition crd : all(CustomResourceDefinition.class)) {
      String g = crd.getSpec().getGroup();
      String plural = crd.getSpec().getNames().getPlural();
      assertTrue(
          granted.contains(new Grant(g, plural, "watch", "")),
          crd.getMetadata().getName() + " is not readable by nodemesh-control");
    }
  }

  // ---- containers ----

  /** Every container of the images this project builds, and where it is. */
  record Running(String where, PodSpec pod, Container c, boolean init) {}

  static List<Running> containers() {
    List<Running> out = new ArrayList<>();
    for (HasMetadata o : objects.values().stream().flatMap(List::stream).toList()) {
      PodSpec pod =
          o instanceof Deployment d
              ? d.getSpec().getTemplate().getSpec()
              : o instanceof DaemonSet ds ? ds.getSpec().getTemplate().getSpec() : null;
      if (pod == null) {
        continue;
      }
      for (Container c : pod.getContainers()) {
        out.add(new Running(o.getMetadata().getName() + "/" + c.getName(), pod, c, false));
      }
      for (Container c : pod.getInitContainers()) {
        out.add(new Running(o.getMetadata().getName() + "/" + c.getName(), pod, c, true));
      }
    }
    return out;
  }

  /** The args as the kubelet passes them: $(VAR) expanded from the container's env. */
  static List<String> expandedArgs(Container c) {
    Map<String, String> env = new HashMap<>();
    for (EnvVar e : c.getEnv()) {
      if (e.getValue() != null) {
        env.put(e.getName(), e.getValue());
      } else if (e.getValueFrom().getFieldRef() != null) {
        String field = e.getValueFrom().getFieldRef().getFieldPath();
        env.put(
            e.getName(),
            switch (field) {
              case "spec.nodeName" -> "node-1";
              case "status.podIP", "status.hostIP" -> "10.0.0.7";
              default -> throw new AssertionError("unexpected fieldRef " + field);
            });
      } else if (e.getValueFrom().getConfigMapKeyRef() != null) {
        var ref = e.getValueFrom().getConfigMapKeyRef();
        String v = one(ConfigMap.class, ref.getName()).getData().get(ref.getKey());
        assertNotNull(v, "ConfigMap " + ref.getName() + " has no key " + ref.getKey());
        env.put(e.getName(), v);
      } else {
        throw new AssertionError("env " + e.getName() + " of an unexpected kind");
      }
    }
    List<String> out = new ArrayList<>();
    Pattern ref = Pattern.compile("\\$\\(([A-Za-z_][A-Za-z0-9_]*)\\)");
    for (String a : c.getArgs()) {
      Matcher m = ref.matcher(a);
      StringBuilder b = new StringBuilder();
      while (m.find()) {
        String v = env.get(m.group(1));
        assertNotNull(v, c.getName() + ": $(" + m.group(1) + ") is not in its env");
        m.appendReplacement(b, Matcher.quoteReplacement(v));
      }
      m.appendTail(b);
      out.add(b.toString());
    }
    return out;
  }

  /** The subcommand's parsed options (effective values, defaults included). */
  static CommandLine parse(Container c) {
    CommandLine cl = Main.commandLine();
    ParseResult r;
    try {
      r = cl.parseArgs(expandedArgs(c).toArray(String[]::new));
    } catch (CommandLine.ParameterException e) {
      throw new AssertionError(c.getName() + ": nodemesh rejects " + c.getArgs() + ": " + e, e);
    }
    assertTrue(r.hasSubcommand(), c.getName() + ": no subcommand in " + c.getArgs());
    return r.subcommand().commandSpec().commandLine();
  }

  static Object option(CommandLine cl, String name) {
    OptionSpec o = cl.getCommandSpec().findOption(name);
    assertNotNull(o, cl.getCommandName() + " has no " + name);
    return o.getValue();
  }

  @Test
  void everyNodemeshContainerArgIsAcceptedByTheRealCommand() {
    int parsed = 0;
    for (Running r : containers()) {
      if (r.c().getImage().startsWith("nodemesh/") && r.c().getCommand().isEmpty()) {
        parse(r.c());
        parsed++;
      }
    }
    assertEquals(
        5, parsed, "control, install-cni, node-proxy, uninstall-cni, uninstall-interception");
    // And the mesh ConfigMap's values are ones the proxy takes.
    Map<String, String> mesh = one(ConfigMap.class, "nodemesh-mesh").getData();
    assertTrue(Set.of("iptables", "ebpf").contains(mesh.get("intercept")), mesh.toString());
  }

  /**
   * install-cni's plugin leaves these namespaces alone, and the control plane marks their pods
   * uncaptured: the two lists must be one setting, or a node would wait for (or tunnel to) pods no
   * proxy serves.
   */
  @Test
  void theControlPlaneAndInstallCniExcludeTheSameNamespaces() {
    CommandLine control =
        parse(container(controlDeployment().getSpec().getTemplate().getSpec(), "control"));
    CommandLine cni =
        parse(container(nodeDaemonSet().getSpec().getTemplate().getSpec(), "install-cni"));
    Object controlList = option(control, "--exclude-namespace");
    Object cniList = option(cni, "--exclude-namespace");
    assertEquals(Set.copyOf((List<?>) cniList), Set.copyOf((List<?>) controlList));
    assertTrue(
        ((List<?>) cniList).contains(NS), "the mesh's own namespace is excluded: " + cniList);
    assertEquals(
        Set.copyOf((List<?>) option(cni, "--exclude-pod")),
        Set.copyOf((List<?>) option(control, "--exclude-pod")));
  }

  /**
   * The control plane on a cluster gates capture on the proxies' enrolment reports (auto is on with
   * the Kubernetes source, RequireEnrolmentFlagTest), which it writes as a pod annotation: the RBAC
   * test above grants that patch.
   */
  @Test
  void theControlPlaneGatesCaptureOnEnrolment() {
    CommandLine control =
        parse(container(controlDeployment().getSpec().getTemplate().getSpec(), "control"));
    assertEquals("kubernetes", option(control, "--source"));
    Object gate = option(control, "--require-enrolment");
    assertTrue(Set.of("auto", "on").contains(gate), "--require-enrolment=" + gate);
  }

  @Test
  void portsAndProbesMatchTheCode() {
    CommandLine control =
        parse(container(controlDeployment().getSpec().getTemplate().getSpec(), "control"));
    int xds = ((java.net.InetSocketAddress) option(control, "--listen")).getPort();
    int controlAdmin = ((java.net.InetSocketAddress) option(control, "--admin")).getPort();
    assertEquals(15010, xds);
    assertEquals(15014, controlAdmin);
    // The defaults in the code are these ports too.
    assertTrue(control.getCommandSpec().findOption("--listen").defaultValue().endsWith(":" + xds));
    assertTrue(
        control.getCommandSpec().findOption("--admin").defaultValue().endsWith(":" + controlAdmin));
    Container cc = container(controlDeployment().getSpec().getTemplate().getSpec(), "control");
    assertProbe(cc.getLivenessProbe(), "/healthz", controlAdmin);
    assertProbe(cc.getReadinessProbe(), "/ready", controlAdmin);
    // The admin port must not be loopback, or the kubelet could not probe it.
    assertNotEquals(
        "127.0.0.1", ((java.net.InetSocketAddress) option(control, "--admin")).getHostString());

    Service svc = one(Service.class, "nodemesh-control");
    assertEquals(
        Set.of(xds, controlAdmin),
        Set.copyOf(svc.getSpec().getPorts().stream().map(p -> p.getPort()).toList()));
    assertEquals(
        controlDeployment().getSpec().getTemplate().getMetadata().getLabels(),
        merged(
            controlDeployment().getSpec().getTemplate().getMetadata().getLabels(),
            svc.getSpec().getSelector()));
    CommandLine proxy =
        parse(container(nodeDaemonSet().getSpec().getTemplate().getSpec(), "node-proxy"));
    java.net.InetSocketAddress proxyAdmin = (java.net.InetSocketAddress) option(proxy, "--admin");
    assertEquals(NodeProxyConfig.ADMIN_PORT, proxyAdmin.getPort());
    assertNotEquals("127.0.0.1", proxyAdmin.getHostString());
    Container np = container(nodeDaemonSet().getSpec().getTemplate().getSpec(), "node-proxy");
    assertProbe(np.getLivenessProbe(), "/healthz", NodeProxyConfig.ADMIN_PORT);
    assertProbe(np.getReadinessProbe(), "/ready", NodeProxyConfig.ADMIN_PORT);
    // The xDS address the proxies get is the control plane's Service and port.
    assertEquals(svc.getMetadata().getName() + "." + NS + ".svc:" + xds, option(proxy, "--xds"));
    // The node's host-network ports never collide with the proxy's in-pod ports.
    Set<Integer> inPod =
        Set.of(
            NodeProxyConfig.OUTBOUND_PORT,
            NodeProxyConfig.INBOUND_PORT,
            NodeProxyConfig.HBONE_PORT);
    for (Running r : containers()) {
      for (var p : r.c().getPorts()) {
        assertFalse(inPod.contains(p.getContainerPort()), r.where() + " " + p);
      }
    }
  }

  static Map<String, String> merged(Map<String, String> a, Map<String, String> b) {
    Map<String, String> m = new HashMap<>(a);
    m.putAll(b);
    return m;
  }

  static void assertProbe(Probe p, String path, int port) {
    assertNotNull(p, "probe on " + path);
    assertEquals(path, p.getHttpGet().getPath());
    assertEquals(port, p.getHttpGet().getPort().getIntVal());
  }

  @Test
  void everyContainerHasResourcesProbesAndNoPrivilege() {
    for (Running r : containers()) {
      Container c = r.c();
      var res = c.getResources();
      assertFalse(res.getRequests().isEmpty(), r.where() + ": no requests");
      assertTrue(res.getLimits().containsKey("memory"), r.where() + ": no memory limit");
      if (!r.init()) {
        assertNotNull(c.getReadinessProbe(), r.where() + ": no readiness probe");
      }
      var sc = c.getSecurityContext();
      assertNotNull(sc, r.where());
      assertNotEquals(Boolean.TRUE, sc.getPrivileged(), r.where() + " is privileged");
      assertEquals(List.of("ALL"), sc.getCapabilities().getDrop(), r.where());
      assertEquals(Boolean.TRUE, sc.getReadOnlyRootFilesystem(), r.where());
      boolean adds = !sc.getCapabilities().getAdd().isEmpty();
      // SYS_ADMIN with allowPrivilegeEscalation=false is rejected by the API server.
      assertEquals(adds ? null : Boolean.FALSE, sc.getAllowPrivilegeEscalation(), r.where());
    }
    Container control = container(controlDeployment().getSpec().getTemplate().getSpec(), "control");
    assertTrue(
        controlDeployment()
            .getSpec()
            .getTemplate()
            .getSpec()
            .getSecurityContext()
            .getRunAsNonRoot());
    assertNotNull(control.getLivenessProbe());
  }

  @Test
  void onlyTheNodeProxyHasCapabilitiesEachJustifiedInAComment() throws IOException {
    Set<String> allowed = Set.of("NET_ADMIN", "SYS_ADMIN", "BPF", "PERFMON", "NET_RAW");
    // The proxy, and its uninstall (detaching what eBPF mode pinned) with the same capabilities.
    Set<String> proxies =
        Set.of("nodemesh-node/node-proxy", "nodemesh-cni-uninstall/uninstall-interception");
    for (Running r : containers()) {
      List<String> add = r.c().getSecurityContext().getCapabilities().getAdd();
      if (!proxies.contains(r.where())) {
        assertEquals(List.of(), add, r.where());
        continue;
      }
      assertEquals(List.of("NET_ADMIN", "SYS_ADMIN"), add);
      assertTrue(allowed.containsAll(add), add.toString());
    }
    String text = Files.readString(PLAIN.resolve("40-node.yaml"));
    for (String cap : List.of("NET_ADMIN", "SYS_ADMIN", "BPF", "PERFMON")) {
      assertTrue(
          Pattern.compile("(?m)^\\s*#.*\\b" + cap + "\\b").matcher(text).find(),
          cap + " has no comment saying why");
    }
    String uninstall = Files.readString(DEPLOY.resolve("uninstall/cni-uninstall.yaml"));
    for (String cap : List.of("NET_ADMIN", "SYS_ADMIN")) {
      assertTrue(
          Pattern.compile("(?m)^\\s*#.*\\b" + cap + "\\b").matcher(uninstall).find(),
          cap + " has no comment saying why in the uninstall DaemonSet");
    }
  }

  // ---- the node DaemonSet ----

  static VolumeMount mountFor(Container c, Path path) {
    VolumeMount best = null;
    for (VolumeMount m : c.getVolumeMounts()) {
      Path mp = Path.of(m.getMountPath());
      if (path.startsWith(mp) && (best == null || mp.startsWith(Path.of(best.getMountPath())))) {
        best = m;
      }
    }
    assertNotNull(best, c.getName() + " mounts nothing over " + path);
    return best;
  }

  /** {@code path} inside {@code c} is the same path on the host. */
  static VolumeMount assertHostPathAtSamePath(PodSpec pod, Container c, Path path) {
    VolumeMount m = mountFor(c, path);
    Volume v =
        pod.getVolumes().stream()
            .filter(x -> x.getName().equals(m.getName()))
            .findFirst()
            .orElseThrow();
    assertNotNull(v.getHostPath(), m.getName() + " is not a hostPath");
    assertEquals(m.getMountPath(), v.getHostPath().getPath(), m.getName());
    return m;
  }

  @Test
  void theKubeletWaitsLongerThanTheProxysDrain() {
    PodSpec pod = nodeDaemonSet().getSpec().getTemplate().getSpec();
    java.time.Duration grace =
        (java.time.Duration) option(parse(container(pod, "node-proxy")), "--drain-grace");
    assertTrue(
        pod.getTerminationGracePeriodSeconds() > grace.toSeconds(),
        "terminationGracePeriodSeconds "
            + pod.getTerminationGracePeriodSeconds()
            + " must exceed --drain-grace "
            + grace
            + ", or the kubelet SIGKILLs a draining proxy");
  }

  /**
   * The DaemonSet's proxy runs with local mode's JVM options, as the bench chose them, for the
   * image's Java (eclipse-temurin:25); only the heap's ceiling differs: half the memory limit
   * rather than 48 MB, since a cluster's config can outgrow the bench's.
   */
  @Test
  void theProxysJvmOptionsAreLocalModesDefaults() {
    Container proxyC = container(nodeDaemonSet().getSpec().getTemplate().getSpec(), "node-proxy");
    List<String> env =
        proxyC.getEnv().stream()
            .filter(e -> e.getName().equals("JDK_JAVA_OPTIONS"))
            .map(EnvVar::getValue)
            .toList();
    assertEquals(1, env.size(), "one JDK_JAVA_OPTIONS on node-proxy: " + env);
    List<String> expected =
        dev.nodemesh.scripts.local.LocalUp.proxyDefaultJvmOptions(25).stream()
            .map(o -> o.equals("-Xmx48m") ? "-XX:MaxRAMPercentage=50" : o)
            .toList();
    assertTrue(expected.contains("-XX:MaxRAMPercentage=50"), expected.toString());
    assertEquals(expected, List.of(env.get(0).trim().split(" +")));
  }

  @Test
  void daemonSetMountsThePathsTheCliDefaultsUse() {
    PodSpec pod = nodeDaemonSet().getSpec().getTemplate().getSpec();
    Container proxyC = container(pod, "node-proxy");
    Container cniC = container(pod, "install-cni");
    CommandLine proxy = parse(proxyC);
    CommandLine cni = parse(cniC);

    Path socket = (Path) option(proxy, "--agent-socket");
    assertEquals(NodeProxyConfig.DEFAULT_AGENT_SOCKET, socket);
    assertEquals(socket, option(cni, "--agent-socket"), "the plugin must call the proxy's socket");
    assertHostPathAtSamePath(pod, proxyC, socket.getParent());
    // install-cni writes no runDir into the plugin's config, so the plugin records pods in its
    // default run dir: the proxy must read that one.
    Path runDir = (Path) option(proxy, "--cni-run-dir");
    assertEquals(
        PluginConfig.DEFAULT_RUN_DIR,
        runDir != null ? runDir : NodeProxyConfig.defaultCniRunDir(socket));
    assertHostPathAtSamePath(pod, proxyC, PluginConfig.DEFAULT_RUN_DIR);

    assertHostPathAtSamePath(pod, cniC, (Path) option(cni, "--cni-bin-dir"));
    assertHostPathAtSamePath(pod, cniC, (Path) option(cni, "--cni-conf-dir"));
    assertEquals(Path.of("/opt/cni/bin"), option(cni, "--cni-bin-dir"));
    assertEquals(Path.of("/etc/cni/net.d"), option(cni, "--cni-conf-dir"));
    assertEquals(Boolean.TRUE, option(cni, "--bundle-java"));
    @SuppressWarnings("unchecked")
    List<String> excluded = (List<String>) option(cni, "--exclude-namespace");
    assertTrue(excluded.containsAll(List.of("kube-system", NS)), excluded.toString());

    VolumeMount netns = assertHostPathAtSamePath(pod, proxyC, Path.of("/var/run/netns/cni-1234"));
    assertEquals("HostToContainer", netns.getMountPropagation());
    VolumeMount bpf = assertHostPathAtSamePath(pod, proxyC, (Path) option(proxy, "--bpf-pin-dir"));
    assertEquals("/sys/fs/bpf", bpf.getMountPath());
    assertHostPathAtSamePath(pod, proxyC, Path.of("/sys/fs/cgroup"));

    assertTrue(pod.getHostNetwork());
    assertEquals("ClusterFirstWithHostNet", pod.getDnsPolicy());
    assertNotEquals(Boolean.TRUE, pod.getHostPID());
    assertEquals("system-node-critical", pod.getPriorityClassName());
    assertTrue(
        pod.getTolerations().stream()
            .anyMatch(t -> "Exists".equals(t.getOperator()) && t.getKey() == null),
        "must tolerate every taint");
    var update = nodeDaemonSet().getSpec().getUpdateStrategy();
    assertEquals("RollingUpdate", update.getType());
    // Never a node without a proxy during an update: see theDaemonSetSurgesOnUpdate.
    assertEquals(0, update.getRollingUpdate().getMaxUnavailable().getIntVal());
    assertEquals(Boolean.FALSE, pod.getAutomountServiceAccountToken());

    // The uninstall DaemonSet edits the same host dirs.
    PodSpec un = one(DaemonSet.class, "nodemesh-cni-uninstall").getSpec().getTemplate().getSpec();
    Container uc = un.getInitContainers().get(0);
    CommandLine u = parse(uc);
    assertEquals(Boolean.TRUE, option(u, "--uninstall"));
    assertHostPathAtSamePath(un, uc, (Path) option(u, "--cni-bin-dir"));
    assertHostPathAtSamePath(un, uc, (Path) option(u, "--cni-conf-dir"));
    // ...and removes eBPF mode's pins from where the proxy made them.
    Container ui = un.getInitContainers().get(1);
    CommandLine i = parse(ui);
    assertEquals("proxy", i.getCommandName());
    assertEquals(Boolean.TRUE, option(i, "--uninstall"));
    assertEquals("auto", option(i, "--intercept"), "finds pins whatever mode the proxy ran in");
    assertEquals(option(proxy, "--bpf-pin-dir"), option(i, "--bpf-pin-dir"));
    assertEquals(option(proxy, "--bpf-cgroup"), option(i, "--bpf-cgroup"));
    assertHostPathAtSamePath(un, ui, (Path) option(i, "--bpf-pin-dir"));
    assertHostPathAtSamePath(un, ui, (Path) option(i, "--bpf-cgroup"));
    // ...and the config the proxy saved.
    assertEquals(option(proxy, "--state-dir"), option(i, "--state-dir"));
    assertHostPathAtSamePath(un, ui, (Path) option(i, "--state-dir"));
  }

  @Test
  void controlPlaneIsHighlyAvailableAndMonitored() {
    Deployment d = controlDeployment();
    assertTrue(d.getSpec().getReplicas() >= 2);
    Map<String, String> podLabels = d.getSpec().getTemplate().getMetadata().getLabels();
    PodDisruptionBudget pdb = one(PodDisruptionBudget.class, "nodemesh-control");
    assertEquals(podLabels, merged(podLabels, pdb.getSpec().getSelector().getMatchLabels()));
    assertTrue(pdb.getSpec().getMinAvailable().getIntVal() >= 1);
    assertTrue(pdb.getSpec().getMinAvailable().getIntVal() < d.getSpec().getReplicas());

    GenericKubernetesResource sm = monitor("ServiceMonitor");
    Service svc = one(Service.class, "nodemesh-control");
    assertEquals(
        svc.getMetadata().getLabels(),
        merged(svc.getMetadata().getLabels(), stringMap(sm, "selector", "matchLabels")));
    String smPort = endpoint(sm, "endpoints").get("port").toString();
    assertTrue(svc.getSpec().getPorts().stream().anyMatch(p -> p.getName().equals(smPort)));

    GenericKubernetesResource pm = monitor("PodMonitor");
    Map<String, String> nodeLabels =
        nodeDaemonSet().getSpec().getTemplate().getMetadata().getLabels();
    assertEquals(nodeLabels, merged(nodeLabels, stringMap(pm, "selector", "matchLabels")));
    // By number: the proxy declares no containerPort (see theDaemonSetSurgesOnUpdate).
    assertEquals(
        NodeProxyConfig.ADMIN_PORT,
        ((Number) endpoint(pm, "podMetricsEndpoints").get("targetPort")).intValue());
  }

  @Test
  void theDaemonSetSurgesOnUpdate() {
    DaemonSet ds = nodeDaemonSet();
    var strategy = ds.getSpec().getUpdateStrategy();
    assertEquals("RollingUpdate", strategy.getType());
    // The new proxy starts beside the old one and takes over before the old one is deleted.
    assertEquals(1, strategy.getRollingUpdate().getMaxSurge().getIntVal());
    assertEquals(0, strategy.getRollingUpdate().getMaxUnavailable().getIntVal());
    PodSpec pod = ds.getSpec().getTemplate().getSpec();
    assertTrue(pod.getHostNetwork());
    for (Container c : pod.getContainers()) {
      // With hostNetwork a containerPort is a hostPort: the surge pod could not be scheduled.
      assertEquals(List.of(), c.getPorts(), c.getName() + " declares a (host) port");
    }
  }

  static GenericKubernetesResource monitor(String kind) {
    List<GenericKubernetesResource> l =
        all(GenericKubernetesResource.class).stream()
            .filter(g -> g.getKind().equals(kind))
            .toList();
    assertEquals(1, l.size(), kind);
    return l.get(0);
  }

  @SuppressWarnings("unchecked")
  static Map<String, String> stringMap(GenericKubernetesResource g, String... path) {
    Object o = g.getAdditionalProperties().get("spec");
    for (String p : path) {
      o = ((Map<String, Object>) o).get(p);
    }
    return (Map<String, String>) o;
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> endpoint(GenericKubernetesResource g, String list) {
    Map<String, Object> spec = (Map<String, Object>) g.getAdditionalProperties().get("spec");
    List<Map<String, Object>> l = (List<Map<String, Object>>) spec.get(list);
    assertEquals(1, l.size());
    return l.get(0);
  }

  // ---- identity ----

  /** The volume that {@code c}'s mount over {@code path} comes from, and the path inside it. */
  record Mounted(Volume volume, String subPath) {}

  static Mounted mounted(PodSpec pod, Container c, Path path) {
    VolumeMount m = mountFor(c, path);
    Volume v =
        pod.getVolumes().stream()
            .filter(x -> x.getName().equals(m.getName()))
            .findFirst()
            .orElseThrow(() -> new AssertionError("no volume " + m.getName()));
    return new Mounted(v, Path.of(m.getMountPath()).relativize(path).toString());
  }

  /**
   * Workload identity is on in the cluster deployment, checked on the args as the real commands
   * parse them: the control plane runs a CA with its root in a Secret, publishes the root to the
   * ConfigMap the proxies mount, serves TLS for the name the proxies dial, and authenticates nodes
   * by TokenReview of the very service account, namespace and audience the DaemonSet's projected
   * token has; the proxy reads its token from that projected volume and its root from that
   * ConfigMap, and both sides use one trust domain.
   */
  @Test
  void workloadIdentityAndMtlsAreOnAndBothSidesAgree() {
    PodSpec controlPod = controlDeployment().getSpec().getTemplate().getSpec();
    CommandLine control = parse(container(controlPod, "control"));
    PodSpec nodePod = nodeDaemonSet().getSpec().getTemplate().getSpec();
    Container proxyC = container(nodePod, "node-proxy");
    CommandLine proxy = parse(proxyC);

    // The CA: root in the Secret the Role lets it read and write, in its own namespace.
    assertEquals("kubernetes", option(control, "--source"));
    assertEquals("nodemesh-ca-root", option(control, "--ca-secret"));
    assertEquals(null, option(control, "--ca-dir"));
    assertEquals(null, option(control, "--bootstrap-tokens"), "on a cluster: TokenReview");

    // The proxy's node credential: a token of the DaemonSet's service account, projected for the
    // audience the control plane reviews it for, short-lived; no API-server token.
    assertEquals(Boolean.FALSE, nodePod.getAutomountServiceAccountToken());
    assertEquals(NS, option(control, "--proxy-namespace"));
    assertEquals(NS, nodeDaemonSet().getMetadata().getNamespace());
    assertEquals(nodePod.getServiceAccountName(), option(control, "--proxy-service-account"));
    Path tokenFile = (Path) option(proxy, "--bootstrap-token-file");
    assertNotNull(tokenFile, "the proxy has no node token: no workload certificates");
    Mounted token = mounted(nodePod, proxyC, tokenFile);
    assertNotNull(token.volume().getProjected(), token.volume().getName() + " is not projected");
    var sources = token.volume().getProjected().getSources();
    assertEquals(1, sources.size());
    var sat = sources.get(0).getServiceAccountToken();
    assertNotNull(sat, "the projected volume holds no service-account token");
    assertEquals(token.subPath(), sat.getPath(), "--bootstrap-token-file is the token's file");
    assertEquals(List.of(sat.getAudience()), option(control, "--token-audience"));
    assertNotEquals("", sat.getAudience());
    assertEquals(3600L, sat.getExpirationSeconds());

    // The root: published by the control plane into the ConfigMap the proxy mounts at --ca-root.
    Path caRoot = (Path) option(proxy, "--ca-root");
    assertNotNull(caRoot, "no --ca-root: xDS and the CA would be plaintext");
    Mounted root = mounted(nodePod, proxyC, caRoot);
    assertNotNull(root.volume().getConfigMap(), root.volume().getName() + " is not a ConfigMap");
    assertEquals(option(control, "--ca-root-configmap"), root.volume().getConfigMap().getName());
    assertNotEquals(Boolean.TRUE, root.volume().getConfigMap().getOptional());
    var items = root.volume().getConfigMap().getItems();
    String key =
        items == null || items.isEmpty()
            ? root.subPath()
            : items.stream()
                .filter(i -> i.getPath().equals(root.subPath()))
                .findFirst()
                .orElseThrow()
                .getKey();
    assertEquals(TrustBundlePublisher.KEY, key, "--ca-root is the published ca.crt");

    // TLS: the name the proxies dial is one the serving certificate is issued for.
    String xds = (String) option(proxy, "--xds");
    String host = xds.substring(0, xds.lastIndexOf(':'));
    @SuppressWarnings("unchecked")
    List<String> sans = (List<String>) option(control, "--tls-san");
    assertTrue(sans.contains(host), host + " not in " + sans);
    Service svc = one(Service.class, "nodemesh-control");
    String name = svc.getMetadata().getName();
    assertTrue(
        sans.containsAll(List.of(name + "." + NS + ".svc", name + "." + NS, name)),
        sans.toString());
    assertEquals(null, option(proxy, "--ca"), "the CA on the xDS connection");

    // One trust domain.
    assertEquals(option(control, "--trust-domain"), option(proxy, "--trust-domain"));
  }

  // ---- images ----

  /**
   * Every image the manifests run is built by a Dockerfile in deploy/images/<name>/ whose
   * entrypoint is the launcher the args were parsed with, and every file it copies is in the source
   * tree or is a Maven build output (scripts' package phase runs after this test, so those two are
   * checked against the pom instead). No image is built.
   */
  @Test
  void everyImageHasADockerfileBuiltFromTheMavenOutput() throws IOException {
    Path root = Path.of("..");
    String scriptsPom = Files.readString(root.resolve("scripts/pom.xml"));
    assertTrue(scriptsPom.contains("<finalName>nodemesh</finalName>"));
    assertTrue(
        scriptsPom.contains("<outputDirectory>${project.build.directory}/lib</outputDirectory>"));
    Set<String> images = new TreeSet<>();
    containers().forEach(r -> images.add(r.c().getImage()));
    for (String image : images) {
      Matcher m = Pattern.compile("nodemesh/([a-z]+):[0-9.]+").matcher(image);
      assertTrue(m.matches(), image);
      Path dir = DEPLOY.resolve("images").resolve(m.group(1));
      String dockerfile = Files.readString(dir.resolve("Dockerfile"));
      List<String> ignore = Files.readAllLines(dir.resolve("Dockerfile.dockerignore"));
      assertTrue(dockerfile.contains("\"dev.nodemesh.scripts.cli.Main\"]"), image);
      Matcher copy = Pattern.compile("(?m)^COPY (\\S+) (\\S+)$").matcher(dockerfile);
      int copies = 0;
      while (copy.find()) {
        copies++;
        String src = copy.group(1);
        assertTrue(ignore.contains("!" + src), src + " is not let through the .dockerignore");
        boolean packaged =
            src.equals("scripts/target/nodemesh.jar") || src.equals("scripts/target/lib/");
        assertTrue(packaged || Files.exists(root.resolve(src)), src + " is not built");
      }
      assertTrue(copies >= 2, image);
    }
    assertEquals(Set.of("nodemesh/control:0.1.0", "nodemesh/node:0.1.0"), images);
  }

  // ---- Helm ----

  /**
   * The chart's templates are the plain manifests with {@code {{ .Values.x }}} (a scalar) and
   * {@code {{ toJson .Values.x }}} (a list) substituted in, and a whole file may be guarded by
   * {@code {{- if .Values.x }}} ... {@code {{- end }}}. This renders exactly that subset, the way
   * Helm does for these values, and refuses any other template construct, so a template that
   * outgrows it fails here instead of going unchecked.
   */
  static String render(String template, JsonNode values) throws IOException {
    String body = template;
    Matcher guard =
        Pattern.compile(
                "\\A\\{\\{- if \\.Values\\.([\\w.]+) }}\\n(.*)\\{\\{- end }}\\n\\z", Pattern.DOTALL)
            .matcher(template);
    if (guard.matches()) {
      JsonNode on = value(values, guard.group(1));
      assertTrue(on.isBoolean(), guard.group(1) + " must be a boolean");
      if (!on.asBoolean()) {
        return "";
      }
      body = guard.group(2);
    }
    Matcher m = Pattern.compile("\\{\\{ (toJson )?\\.Values\\.([\\w.]+) }}").matcher(body);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      JsonNode v = value(values, m.group(2));
      String text;
      if (m.group(1) != null) {
        text = new ObjectMapper().writeValueAsString(v);
      } else {
        assertTrue(v.isValueNode(), m.group(2) + " is not a scalar; use toJson");
        text = v.asText();
      }
      m.appendReplacement(out, Matcher.quoteReplacement(text));
    }
    m.appendTail(out);
    assertFalse(out.toString().contains("{{"), "a template construct this test cannot render");
    return out.toString();
  }

  static JsonNode value(JsonNode values, String path) {
    JsonNode n = values;
    for (String p : path.split("\\.")) {
      n = n.path(p);
    }
    assertFalse(n.isMissingNode(), ".Values." + path + " is not in values.yaml");
    return n;
  }

  static List<JsonNode> trees(String yaml) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    for (String d : documents(yaml)) {
      out.add(YAML.readTree(d));
    }
    return out;
  }

  @Test
  void chartWithDefaultValuesRendersExactlyThePlainManifests() throws IOException {
    JsonNode values = YAML.readTree(Files.readString(CHART.resolve("values.yaml")));
    JsonNode chart = YAML.readTree(Files.readString(CHART.resolve("Chart.yaml")));
    assertEquals("v2", chart.path("apiVersion").asText());
    assertEquals("nodemesh", chart.path("name").asText());
    for (String sub : List.of("", "monitoring")) {
      List<Path> plain = yamlFiles(PLAIN.resolve(sub));
      List<Path> templates = yamlFiles(CHART.resolve("templates").resolve(sub));
      assertEquals(
          plain.stream().map(Path::getFileName).toList(),
          templates.stream().map(Path::getFileName).toList(),
          "one template per plain manifest");
      for (int i = 0; i < plain.size(); i++) {
        String t = Files.readString(templates.get(i));
        String rendered = render(t, values);
        if (sub.equals("monitoring")) {
          assertEquals("", rendered, "monitoring is off by default");
          ((com.fasterxml.jackson.databind.node.ObjectNode) values.path("monitoring"))
              .put("enabled", true);
          rendered = render(t, values);
          ((com.fasterxml.jackson.databind.node.ObjectNode) values.path("monitoring"))
              .put("enabled", false);
        }
        assertEquals(
            trees(Files.readString(plain.get(i))), trees(rendered), templates.get(i).toString());
      }
    }
    // CRDs: the chart's crds/ is deploy/crds/.
    assertEquals(
        DEPLOY.resolve("crds").toRealPath(), CHART.resolve("crds").toRealPath(), "chart crds/");
  }

  @Test
  void renderingRefusesWhatItCannotRenderAndSubstitutesValues() throws IOException {
    JsonNode values = YAML.readTree("a: {b: 3, l: [X, Y]}\non: false\n");
    assertEquals(
        "n: 3\nl: [\"X\",\"Y\"]\n",
        render("n: {{ .Values.a.b }}\nl: {{ toJson .Values.a.l }}\n", values));
    assertEquals("", render("{{- if .Values.on }}\nx: 1\n{{- end }}\n", values));
    assertThrows(AssertionError.class, () -> render("n: {{ .Values.a.b | quote }}\n", values));
    assertThrows(AssertionError.class, () -> render("n: {{ .Values.missing }}\n", values));
    assertThrows(AssertionError.class, () -> render("n: {{ .Values.a.l }}\n", values));
  }

  static <T extends Throwable> void assertThrows(
      Class<T> type, org.junit.jupiter.api.function.Executable e) {
    org.junit.jupiter.api.Assertions.assertThrows(type, e);
  }

  @Test
  void groupResourceParsesApiPaths() {
    assertEquals("/pods", groupResource("/api/v1/pods?resourceVersion=0"));
    assertEquals("/namespaces", groupResource("/api/v1/namespaces?watch=true"));
    assertEquals("/pods", groupResource("/api/v1/namespaces/a/pods"));
    assertEquals(
        "discovery.k8s.io/endpointslices",
        groupResource(
            "/apis/discovery.k8s.io/v1/endpointslices?allowWatchBookmarks=true&watch=true"));
  }
}
