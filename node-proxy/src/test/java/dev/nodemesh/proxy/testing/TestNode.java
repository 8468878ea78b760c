package dev.nodemesh.proxy.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.TestNetns;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A node on this machine for end-to-end tests: a "node" namespace holding a bridge, one namespace
 * per pod wired to it with a veth, the node proxy running in this JVM, and test servers inside the
 * pods. Nothing is created in the root namespace; everything is removed by {@link #close()}.
 */
public final class TestNode implements AutoCloseable {
  public static final String SUBNET = "10.214.0.";
  public static final String SERVICE_CIDR = "10.97.0.0/16";
  public static final String POD_CIDR = "10.214.0.0/16";

  /** IPv6 (ULA) pod addresses of dual-stack test pods: SUBNET6 + host part in hex. */
  public static final String SUBNET6 = "fd00:214::";

  public static final String SERVICE_CIDR6 = "fd00:97::/112";

  private final Path dir;
  private final TestNetns node;
  private final String nodeName;
  private final String subnet;
  private final String tag;
  private final boolean routed;
  private final Map<String, TestNetns> pods = new LinkedHashMap<>();
  private final Map<String, String> ips = new LinkedHashMap<>();
  private final Map<String, String> ips6 = new LinkedHashMap<>();
  private boolean ipv6Gateway;
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private final Map<String, PodSockets> podSockets = new LinkedHashMap<>();
  private NodeProxy proxy;
  private TestAgent agent;
  private InterceptionMode interception = InterceptionMode.iptables();

  private TestNode(
      Path dir, TestNetns node, String nodeName, String subnet, String tag, boolean routed) {
    this.dir = dir;
    this.node = node;
    this.nodeName = nodeName;
    this.subnet = subnet;
    this.tag = tag;
    this.routed = routed;
  }

  public static TestNode create(Path dir) throws IOException {
    return create(dir, "test-node", SUBNET, "", false);
  }

  /**
   * One node of a multi-node cluster: pods on {@code subnet}0/24 behind the bridge's gateway {@code
   * subnet}1, routing the pod CIDR and the service CIDR through it; the node namespace forwards.
   * {@code tag} keeps link names apart between nodes.
   */
  public static TestNode createRouted(Path dir, String nodeName, String subnet, String tag)
      throws IOException {
    return create(dir, nodeName, subnet, tag, true);
  }

  private static TestNode create(
      Path dir, String nodeName, String subnet, String tag, boolean routed) throws IOException {
    TestNetns node = TestNetns.create("node" + tag);
    try {
      node.exec("ip", "link", "add", "br0", "type", "bridge");
      node.exec("ip", "link", "set", "br0", "up");
      if (routed) {
        node.exec("ip", "addr", "add", subnet + "1/24", "dev", "br0");
        node.exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
      }
      Files.createDirectories(dir.resolve("config"));
      return new TestNode(dir, node, nodeName, subnet, tag, routed);
    } catch (IOException | RuntimeException e) {
      node.close();
      throw e;
    }
  }

  public TestNetns nodeNetns() {
    return node;
  }

  public String nodeName() {
    return nodeName;
  }

  /**
   * The standard test mesh: a client and three echo pods (NAME on 8080, ECHO on 9000) serving
   * service {@link Mesh#VIP}, with the config written. The proxy is not started yet.
   */
  public void addStandardMesh() throws IOException {
    addPod("client", 10);
    for (int i = 1; i <= 3; i++) {
      addPod("echo-" + i, 10 + i);
      serve("echo-" + i, 8080, TestServer.Mode.NAME);
      serve("echo-" + i, 9000, TestServer.Mode.ECHO);
    }
    writeConfig("pods.yaml", Mesh.pods());
    writeConfig("services.yaml", Mesh.service("echo", Mesh.VIP, "echo"));
  }

  /** Enrols the pods of {@link #addStandardMesh()}. */
  public void enrolStandardMesh() {
    for (String p : new String[] {"client", "echo-1", "echo-2", "echo-3"}) {
      enrol(p);
    }
  }

  /** A pod namespace with eth0 on the node's bridge, its IP, and a route only for services. */
  public TestNetns addPod(String name, int hostPart) throws IOException {
    TestNetns pod = TestNetns.create(name);
    pods.put(name, pod);
    String ip = subnet + hostPart;
    ips.put(name, ip);
    String a = TestNetns.runPrefix() + tag + "a" + hostPart;
    String b = TestNetns.runPrefix() + tag + "b" + hostPart;
    TestNetns.sh(
        "ip",
        "link",
        "add",
        a,
        "netns",
        pod.name(),
        "type",
        "veth",
        "peer",
        "name",
        b,
        "netns",
        node.name());
    pod.exec("ip", "link", "set", a, "name", "eth0");
    pod.exec("ip", "addr", "add", ip + "/24", "dev", "eth0");
    pod.exec("ip", "link", "set", "eth0", "up");
    if (routed) {
      String gateway = subnet + "1";
      pod.exec("ip", "route", "add", POD_CIDR, "via", gateway, "dev", "eth0");
      pod.exec("ip", "route", "add", SERVICE_CIDR, "via", gateway, "dev", "eth0");
    } else {
      pod.exec("ip", "route", "add", SERVICE_CIDR, "dev", "eth0");
    }
    node.exec("ip", "link", "set", b, "master", "br0", "up");
    return pod;
  }

  /**
   * Deletes a pod's namespace (and with it its veth) while the node runs, as when a pod is gone
   * before its CNI DEL reached the agent.
   */
  public void removePod(String name) throws IOException {
    TestNetns pod = pods.remove(name);
    ips.remove(name);
    ips6.remove(name);
    pod.close();
  }

  /** The pods added so far, in the order they were added. */
  public Set<String> podNames() {
    return new LinkedHashSet<>(pods.keySet());
  }

  public String ip(String pod) {
    return ips.get(pod);
  }

  /**
   * Makes {@code pod} dual-stack: an IPv6 address on its eth0 (no duplicate address detection, so
   * it is usable at once) and an on-link route for the IPv6 service range. Enrol (again) after this
   * for the proxy to learn the address. Returns the address.
   */
  public String addIpv6(String name, int hostPart) throws IOException {
    String ip6 = subnet6() + Integer.toHexString(hostPart);
    TestNetns pod = pods.get(name);
    pod.exec("ip", "-6", "addr", "add", ip6 + "/64", "dev", "eth0", "nodad");
    if (routed) {
      // Other nodes' pods (fd00:214:<tag>::/64 each) and the services through the bridge's
      // address. A default route: a /48 route via the same gateway was "Network is unreachable"
      // for every address in it here (ip -6 route get), the default route is not.
      String gateway = subnet6() + "1";
      if (!ipv6Gateway) {
        node.exec("ip", "-6", "addr", "add", gateway + "/64", "dev", "br0", "nodad");
        node.exec("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1");
        ipv6Gateway = true;
      }
      pod.exec("ip", "-6", "route", "add", "default", "via", gateway, "dev", "eth0");
    } else {
      pod.exec("ip", "-6", "route", "add", SERVICE_CIDR6, "dev", "eth0");
    }
    ips6.put(name, ip6);
    return ip6;
  }

  /**
   * This node's IPv6 pod prefix: {@link #SUBNET6}, or on a routed node its own /64 {@code
   * fd00:214:<tag>::}, whose {@code ::1} is the bridge.
   */
  private String subnet6() {
    return routed ? "fd00:214:" + tag + "::" : SUBNET6;
  }

  /** The pod's IPv6 address ({@link #addIpv6}), or null. */
  public String ip6(String pod) {
    return ips6.get(pod);
  }

  public TestNetns pod(String name) {
    return pods.get(name);
  }

  public Path configDir() {
    return dir.resolve("config");
  }

  public void writeConfig(String file, String yaml) throws IOException {
    Path tmp = dir.resolve(file + ".tmp");
    Files.writeString(tmp, yaml, StandardCharsets.UTF_8);
    Files.move(tmp, configDir().resolve(file), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  public NodeProxy startProxy(TransportKind transport) throws Exception {
    return startProxy(transport, InterceptionMode.iptables());
  }

  public NodeProxy startProxy(TransportKind transport, InterceptionMode interception)
      throws Exception {
    return startProxy(transport, interception, null, null, AccessLogSettings.OFF);
  }

  public NodeProxy startProxy(
      TransportKind transport, InterceptionMode interception, AccessLogSettings accessLog)
      throws Exception {
    return startProxy(transport, interception, null, null, accessLog);
  }

  /** The proxy with HBONE: certificates from {@code identities}, tunnel policy by {@code authz}. */
  public NodeProxy startProxy(
      TransportKind transport,
      InterceptionMode interception,
      IdentityProvider identities,
      Authorizer authz)
      throws Exception {
    return startProxy(transport, interception, identities, authz, AccessLogSettings.OFF);
  }

  private NodeProxy startProxy(
      TransportKind transport,
      InterceptionMode interception,
      IdentityProvider identities,
      Authorizer authz,
      AccessLogSettings accessLog)
      throws Exception {
    return startProxy(
        transport, interception, identities, authz, accessLog, TunnelSettings.defaults());
  }

  /** The proxy with HBONE and the given tunnel settings (e.g. a short idle timeout). */
  public NodeProxy startProxy(
      TransportKind transport,
      InterceptionMode interception,
      IdentityProvider identities,
      Authorizer authz,
      AccessLogSettings accessLog,
      TunnelSettings tunnelSettings)
      throws Exception {
    this.interception = interception;
    proxy =
        NodeProxy.start(
            NodeProxyConfig.builder()
                .transport(transport)
                .configDir(configDir())
                .agentSocket(dir.resolve("agent.sock"))
                .adminAddress(new InetSocketAddress("127.0.0.1", 0))
                .nodeName(nodeName)
                .workerThreads(2)
                .interception(interception)
                .accessLog(accessLog)
                .build(),
            identities,
            authz,
            tunnelSettings);
    agent = new TestAgent(dir.resolve("agent.sock"));
    return proxy;
  }

  /** The proxy with its config from a control plane at {@code xdsTarget} instead of files. */
  public NodeProxy startProxyOverXds(TransportKind transport, String xdsTarget) throws Exception {
    proxy =
        NodeProxy.start(
            NodeProxyConfig.builder()
                .transport(transport)
                .agentSocket(dir.resolve("agent.sock"))
                .adminAddress(new InetSocketAddress("127.0.0.1", 0))
                .nodeName("test-node")
                .workerThreads(2)
                .interception(InterceptionMode.iptables())
                .xdsTarget(xdsTarget)
                .build());
    agent = new TestAgent(dir.resolve("agent.sock"));
    return proxy;
  }

  /** The agent socket a proxy of this node listens on (for configs built by the test). */
  public Path agentSocket() {
    return dir.resolve("agent.sock");
  }

  /**
   * The settings every plain proxy of this node starts from (epoll, iptables interception, this
   * node's config dir, agent socket and name, an admin port of its own, two I/O threads), for a
   * test that changes some of them and passes the result to {@link #startProxy(NodeProxyConfig)}.
   */
  public NodeProxyConfig.Builder proxyConfig() {
    return NodeProxyConfig.builder()
        .transport(TransportKind.EPOLL)
        .configDir(configDir())
        .agentSocket(agentSocket())
        .adminAddress(new InetSocketAddress("127.0.0.1", 0))
        .nodeName(nodeName)
        .workerThreads(2)
        .interception(InterceptionMode.iptables());
  }

  /** The proxy started with {@code config} as the test built it (xDS, a CA, its own settings). */
  public NodeProxy startProxy(NodeProxyConfig config) throws Exception {
    this.interception = config.interception();
    proxy = NodeProxy.start(config);
    agent = new TestAgent(agentSocket());
    return proxy;
  }

  public NodeProxy proxy() {
    return proxy;
  }

  /**
   * The sum over the proxy's scrape of the series of {@code metric} whose line holds every one of
   * {@code labels} (each a whole {@code name="value"}): one count across the labels not named.
   */
  public double metric(String metric, String... labels) {
    return sum(proxy.dataPlane().metrics().scrape(), metric, labels);
  }

  /**
   * Asserts that the proxy counted {@code metric} with every one of {@code labels}: some series of
   * it is not 0. The failure message is the whole scrape.
   */
  public void assertCounted(String metric, String... labels) {
    String scrape = proxy.dataPlane().metrics().scrape();
    assertTrue(
        sum(scrape, metric, labels) > 0,
        metric + " " + List.of(labels) + " is not counted in:\n" + scrape);
  }

  private static double sum(String scrape, String metric, String... labels) {
    double sum = 0;
    for (String line : scrape.split("\n")) {
      if (line.startsWith(metric + "{") && Stream.of(labels).allMatch(line::contains)) {
        sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  public void stopProxy() throws Exception {
    if (agent != null) {
      agent.close();
      agent = null;
    }
    if (proxy != null) {
      proxy.close();
      proxy = null;
    }
  }

  public TestAgent agent() {
    return agent;
  }

  public Pod podMessage(String name) {
    return Pod.newBuilder()
        .setUid("uid-" + name)
        .setName(name)
        .setNamespace("default")
        .setNetnsPath(pods.get(name).path().toString())
        .addIps(ips.get(name))
        .addAllIps(ips6.containsKey(name) ? List.of(ips6.get(name)) : List.of())
        .build();
  }

  public AddPodResponse enrol(String name) {
    return agent.addPod(podMessage(name));
  }

  /** A test server inside a pod, listening on all its addresses. */
  public TestServer serve(String pod, int port, TestServer.Mode mode) throws IOException {
    TestServer s = TestServer.start(pods.get(pod).path(), port, pod, mode);
    closeables.add(s);
    return s;
  }

  /** An HTTP test server inside a pod (see {@link HttpTestServer}). */
  public HttpTestServer serveHttp(String pod, int port) throws IOException {
    HttpTestServer s = HttpTestServer.start(pods.get(pod).path(), port, pod);
    closeables.add(s);
    return s;
  }

  /** An HTTP/2 cleartext test server inside a pod (see {@link H2TestServer}). */
  public H2TestServer serveH2(String pod, int port) throws IOException {
    H2TestServer s = H2TestServer.start(pods.get(pod).path(), port, pod);
    closeables.add(s);
    return s;
  }

  /** A grpc-java server inside a pod (see {@link GrpcTestServer}). */
  public GrpcTestServer serveGrpc(String pod, int port, String... methods) throws IOException {
    GrpcTestServer s = GrpcTestServer.start(pods.get(pod).path(), port, pod, methods);
    closeables.add(s);
    return s;
  }

  /** A connected socket made inside {@code pod}, as the pod's own app would make it. */
  public SocketChannel connect(String pod, String ip, int port) throws IOException {
    SocketChannel ch;
    try (NetworkNamespace ns = NetworkNamespace.open(pods.get(pod).path());
        NetworkNamespace.Scope in = ns.enter()) {
      ch = SocketChannel.open();
    }
    try {
      ch.socket().setSoTimeout(30_000);
      ch.connect(new InetSocketAddress(ip, port));
      return ch;
    } catch (IOException e) {
      ch.close();
      throw e;
    }
  }

  /**
   * A connected socket of {@code pod}'s app that this JVM reads and writes: {@link #connect} in
   * iptables mode; in eBPF mode one made by a helper process in the pod's netns and the proxy's
   * cgroup ({@link PodSockets}, one per pod, ended at {@link #close}), since a cgroup hook never
   * sees a socket of this JVM.
   */
  public PodSockets.Conn podConnect(String pod, String ip, int port) throws IOException {
    if (interception.kind() == InterceptionMode.Kind.IPTABLES) {
      return PodSockets.Conn.of(connect(pod, ip, port));
    }
    PodSockets sockets;
    synchronized (podSockets) {
      sockets = podSockets.get(pod);
      if (sockets == null) {
        sockets = PodSockets.start(pods.get(pod), interception.cgroup());
        podSockets.put(pod, sockets);
      }
    }
    return sockets.connect(ip, port);
  }

  /**
   * Runs curl with {@code args} inside {@code pod} (in eBPF mode, inside the proxy's cgroup, as the
   * pod's app would be); returns its output.
   */
  public String curl(String pod, String... args) throws IOException {
    String[] cmd = new String[args.length + 1];
    cmd[0] = "curl";
    System.arraycopy(args, 0, cmd, 1, args.length);
    return podExec(pod, cmd);
  }

  /** Runs {@code cmd} as a process of {@code pod} ({@link #podCommand}); returns its output. */
  public String podExec(String pod, String... cmd) throws IOException {
    return TestNetns.sh(podCommand(pod, cmd).toArray(String[]::new));
  }

  /**
   * The command line that runs {@code cmd} as a process of {@code pod}: in its network namespace
   * and, when this node's proxy intercepts with eBPF, in the cgroup the programs are attached to.
   */
  public List<String> podCommand(String pod, String... cmd) {
    List<String> full = new ArrayList<>();
    if (interception.kind() == InterceptionMode.Kind.IPTABLES) {
      full.addAll(List.of("ip", "netns", "exec", pods.get(pod).name()));
    } else {
      full.addAll(
          List.of(
              "sh",
              "-c",
              "echo $$ > "
                  + interception.cgroup().resolve("cgroup.procs")
                  + " && exec ip netns exec "
                  + pods.get(pod).name()
                  + " \"$@\"",
              "sh"));
    }
    full.addAll(List.of(cmd));
    return full;
  }

  public String natTable(String pod) throws IOException {
    return pods.get(pod).exec("iptables-save", "-t", "nat");
  }

  public String nat6Table(String pod) throws IOException {
    return pods.get(pod).exec("ip6tables-save", "-t", "nat");
  }

  @Override
  public void close() throws Exception {
    Exception first = null;
    try {
      stopProxy();
    } catch (Exception e) {
      first = e;
    }
    synchronized (podSockets) {
      podSockets.values().forEach(PodSockets::close);
      podSockets.clear();
    }
    for (AutoCloseable c : closeables) {
      try {
        c.close();
      } catch (Exception e) {
        first = first == null ? e : first;
      }
    }
    for (TestNetns p : pods.values()) {
      try {
        p.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    node.close();
    if (first != null) {
      throw first;
    }
  }
}
