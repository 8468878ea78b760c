package dev.nodemesh.proxy.outbound;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The outbound decision over one YAML-built mesh, as a table; no sockets. */
class OutboundRouterTest {
  private static final String ECHO_PORTS =
      "[{name: http, containerPort: 8080}, {name: tcp, containerPort: 9000}]";
  private static final String WEB_PORTS = "[{name: http, port: 80, targetPort: 8080}]";

  private static ConfigSnapshot mesh;

  @BeforeAll
  static void loadMesh(@TempDir Path dir) throws Exception {
    // echo-3 first: endpoint order must come from names, not from the file.
    MeshYaml.write(
        dir,
        "pods.yaml",
        docs(
            pod("default", "echo-3", "10.213.0.13", "{app: echo}", ECHO_PORTS),
            pod("default", "echo-1", "10.213.0.11", "{app: echo, version: v1}", ECHO_PORTS),
            pod("default", "echo-2", "10.213.0.12", "{app: echo}", ECHO_PORTS),
            pod("default", "client", "10.213.0.10", "{app: client}", "[]"),
            pod("other", "echo-x", "10.213.1.5", "{app: echo}", ECHO_PORTS),
            pod(
                "default",
                "mixed-a",
                "10.213.0.20",
                "{app: mixed}",
                "[{name: tcp, containerPort: 9100}]"),
            pod(
                "default",
                "mixed-b",
                "10.213.0.21",
                "{app: mixed}",
                "[{name: http, containerPort: 80}]"),
            pod("default", "v6-1", "fd00:213::30,10.213.0.30", "{app: v6}", "[]"),
            pod("default", "v6-2", "10.213.0.31", "{app: v6}", "[]")));
    MeshYaml.write(
        dir,
        "services.yaml",
        docs(
            service(
                "default",
                "echo",
                "[10.96.0.10]",
                "{app: echo}",
                "[{name: http, port: 80, targetPort: 8080, appProtocol: http},"
                    + " {name: tcp, port: 9000, targetPort: tcp}]"),
            service("other", "echo", "[10.96.1.10]", "{app: echo}", WEB_PORTS),
            service("default", "empty", "[10.96.0.20]", "{app: nothing}", WEB_PORTS),
            service("default", "manual", "[10.96.0.21]", "{}", WEB_PORTS),
            service(
                "default",
                "mixed",
                "[10.96.0.22]",
                "{app: mixed}",
                "[{port: 9000, targetPort: tcp}]"),
            service(
                "default",
                "dead",
                "[10.96.0.23]",
                "{app: client}",
                "[{port: 9000, targetPort: tcp}]"),
            service("default", "v6", "[\"fd00::10\"]", "{app: v6}", WEB_PORTS),
            service("default", "headless", "[None]", "{app: echo}", WEB_PORTS)));
    mesh = ConfigLoader.load(dir);
  }

  static Stream<Arguments> routes() {
    return Stream.of(
        row(
            "vip:80 -> first endpoint by name",
            "10.96.0.10",
            80,
            "service default/echo:80 -> echo-1 10.213.0.11:8080"),
        row(
            "named targetPort",
            "10.96.0.10",
            9000,
            "service default/echo:9000 -> echo-1 10.213.0.11:9000"),
        row("port not in service", "10.96.0.10", 81, "unknown port default/echo:81"),
        row("selector matches nothing", "10.96.0.20", 80, "no endpoints default/empty:80"),
        row("no selector", "10.96.0.21", 80, "no endpoints default/manual:80"),
        row(
            "endpoint without the named port is skipped",
            "10.96.0.22",
            9000,
            "service default/mixed:9000 -> mixed-a 10.213.0.20:9100"),
        row("no endpoint has the named port", "10.96.0.23", 9000, "no endpoints default/dead:9000"),
        row(
            "selector does not cross namespaces",
            "10.96.1.10",
            80,
            "service other/echo:80 -> echo-x 10.213.1.5:8080"),
        row(
            "IPv6 VIP -> IPv6 IP of a dual-stack pod",
            "fd00::10",
            80,
            "service default/v6:80 -> v6-1 fd00:213:0:0:0:0:0:30:8080"),
        row("pod IP, direct", "10.213.0.12", 8080, "workload default/echo-2 10.213.0.12:8080"),
        row("pod IP, any port", "10.213.0.10", 5555, "workload default/client 10.213.0.10:5555"),
        row(
            "second IP of a dual-stack pod",
            "10.213.0.30",
            80,
            "workload default/v6-1 10.213.0.30:80"),
        row("not in the mesh", "8.8.8.8", 443, "passthrough 8.8.8.8:443"),
        row("unused address in the pod range", "10.213.0.99", 80, "passthrough 10.213.0.99:80"),
        row("IPv6 outside the mesh", "2001:db8::1", 443, "passthrough 2001:db8:0:0:0:0:0:1:443"));
  }

  private static Arguments row(String name, String ip, int port, String expected) {
    return Arguments.of(name, ip, port, expected);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("routes")
  void routes(String name, String ip, int port, String expected) throws Exception {
    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName(ip), port);
    assertEquals(expected, describe(OutboundRouter.route(mesh, dst, new RoundRobinLoadBalancer())));
  }

  @Test
  void roundRobinVisitsAllThreeEndpointsInOrder() throws Exception {
    LoadBalancer lb = new RoundRobinLoadBalancer();
    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName("10.96.0.10"), 80);
    List<String> picked = new ArrayList<>();
    for (int i = 0; i < 7; i++) {
      Route.ToService route = (Route.ToService) OutboundRouter.route(mesh, dst, lb);
      picked.add(route.endpoint().name() + "@" + route.upstream().getAddress().getHostAddress());
    }
    assertEquals(
        List.of(
            "echo-1@10.213.0.11",
            "echo-2@10.213.0.12",
            "echo-3@10.213.0.13",
            "echo-1@10.213.0.11",
            "echo-2@10.213.0.12",
            "echo-3@10.213.0.13",
            "echo-1@10.213.0.11"),
        picked);
  }

  @Test
  void roundRobinSkipsEndpointsWithoutTheNamedPort() throws Exception {
    LoadBalancer lb = new RoundRobinLoadBalancer();
    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName("10.96.0.22"), 9000);
    for (int i = 0; i < 4; i++) {
      assertEquals(
          "service default/mixed:9000 -> mixed-a 10.213.0.20:9100",
          describe(OutboundRouter.route(mesh, dst, lb)));
    }
  }

  @Test
  void endpointsAreSortedAndStayInTheServiceNamespace() {
    MeshService echo = mesh.serviceByVip(ip("10.96.0.10"));
    assertEquals(
        List.of("default/echo-1", "default/echo-2", "default/echo-3"),
        mesh.endpoints(echo).stream().map(w -> w.id().toString()).toList());
  }

  @Test
  void aLoadBalancerIndexOutOfRangeIsRejected() throws Exception {
    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName("10.96.0.10"), 80);
    assertThrows(
        IndexOutOfBoundsException.class, () -> OutboundRouter.route(mesh, dst, (s, n) -> n));
  }

  @Test
  void anUnresolvedDestinationPassesThrough() {
    InetSocketAddress dst = InetSocketAddress.createUnresolved("echo.default", 80);
    assertEquals(new Route.Passthrough(dst), OutboundRouter.route(mesh, dst, (s, n) -> 0));
  }

  @Test
  void theEmptySnapshotPassesEverythingThrough() throws Exception {
    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName("10.96.0.10"), 80);
    assertEquals(
        new Route.Passthrough(dst),
        OutboundRouter.route(ConfigSnapshot.empty(), dst, new RoundRobinLoadBalancer()));
  }

  /** Before the first config (version 0), the service range is refused; outside it passes. */
  @ParameterizedTest(name = "{0} under version {1} -> {2}")
  @MethodSource("coldStartTable")
  void theServiceRangeIsRefusedOnlyBeforeTheFirstConfig(
      String destination, long version, String expected) {
    ServiceRange range = ServiceRange.parse(List.of("10.96.0.0/12,fd00:96::/112"));
    ConfigSnapshot snapshot = version == 0 ? ConfigSnapshot.empty() : mesh.withVersion(version);
    InetSocketAddress dst = new InetSocketAddress(ip(destination), 80);
    assertEquals(
        expected,
        describe(OutboundRouter.route(snapshot, range, dst, new RoundRobinLoadBalancer())));
  }

  static Stream<Arguments> coldStartTable() {
    return Stream.of(
        // No config: a VIP (of either family, at either end of the range) is refused.
        Arguments.of("10.96.0.10", 0L, "no config 10.96.0.10:80"),
        Arguments.of("10.111.255.255", 0L, "no config 10.111.255.255:80"),
        Arguments.of("fd00:96::10", 0L, "no config fd00:96:0:0:0:0:0:10:80"),
        // Outside the range: passthrough as before, config or not.
        Arguments.of("10.112.0.1", 0L, "passthrough 10.112.0.1:80"),
        Arguments.of("10.95.255.255", 0L, "passthrough 10.95.255.255:80"),
        Arguments.of("fd00:97::10", 0L, "passthrough fd00:97:0:0:0:0:0:10:80"),
        Arguments.of("192.0.2.1", 0L, "passthrough 192.0.2.1:80"),
        // With config: the snapshot decides; an unknown VIP in the range passes through.
        Arguments.of("10.96.0.10", 7L, "service default/echo:80 -> echo-1 10.213.0.11:8080"),
        Arguments.of("10.96.0.99", 7L, "passthrough 10.96.0.99:80"));
  }

  @Test
  void withNoServiceRangeNothingIsRefusedBeforeTheFirstConfig() throws Exception {
    InetSocketAddress dst = new InetSocketAddress(ip("10.96.0.10"), 80);
    assertEquals(
        new Route.Passthrough(dst),
        OutboundRouter.route(
            ConfigSnapshot.empty(), ServiceRange.NONE, dst, new RoundRobinLoadBalancer()));
  }

  private static InetAddress ip(String literal) {
    try {
      return InetAddress.getByName(literal);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  /** One line per route, so a table row states the whole expected decision. */
  static String describe(Route route) {
    if (route instanceof Route.ToService r) {
      return "service "
          + r.service().id()
          + ":"
          + r.port().port()
          + " -> "
          + r.endpoint().name()
          + " "
          + hostPort(r.upstream());
    } else if (route instanceof Route.ToWorkload r) {
      return "workload " + r.workload().id() + " " + hostPort(r.upstream());
    } else if (route instanceof Route.NoEndpoints r) {
      return "no endpoints " + r.service().id() + ":" + r.port().port();
    } else if (route instanceof Route.UnknownServicePort r) {
      return "unknown port " + r.service().id() + ":" + r.port();
    } else if (route instanceof Route.Passthrough r) {
      return "passthrough " + hostPort(r.upstream());
    } else if (route instanceof Route.NoConfig r) {
      return "no config " + hostPort(r.original());
    }
    throw new AssertionError(route);
  }

  private static String hostPort(InetSocketAddress a) {
    return a.getAddress().getHostAddress() + ":" + a.getPort();
  }
}
