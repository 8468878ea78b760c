package dev.nodemesh.proxy.inbound;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The inbound decision as a table; no sockets. */
class InboundRouterTest {
  private static ConfigSnapshot mesh;

  @BeforeAll
  static void loadMesh(@TempDir Path dir) throws Exception {
    MeshYaml.write(
        dir,
        "mesh.yaml",
        docs(
            pod("default", "echo-1", "10.213.0.11", "{app: echo}", "[]"),
            pod("prod", "api", "10.213.0.40,fd00:213::40", "{app: api}", "[]"),
            service("default", "echo", "[10.96.0.10]", "{app: echo}", "[{port: 80}]")));
    mesh = ConfigLoader.load(dir);
  }

  static Stream<Arguments> routes() {
    return Stream.of(
        Arguments.of("pod IP", "10.213.0.11", 8080, "local default/echo-1 10.213.0.11:8080"),
        Arguments.of(
            "second IP of a pod", "fd00:213::40", 443, "local prod/api fd00:213:0:0:0:0:0:40:443"),
        Arguments.of("unknown IP", "10.213.0.99", 8080, "unknown 10.213.0.99:8080"),
        Arguments.of("a VIP is not a workload", "10.96.0.10", 80, "unknown 10.96.0.10:80"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("routes")
  void routes(String name, String ip, int port, String expected) throws Exception {
    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName(ip), port);
    InboundRoute route = InboundRouter.route(mesh, dst);
    String actual;
    if (route instanceof InboundRoute.ToLocalWorkload r) {
      actual = "local " + r.workload().id() + " " + hostPort(r.upstream());
    } else {
      actual = "unknown " + hostPort(((InboundRoute.UnknownDestination) route).upstream());
    }
    assertEquals(expected, actual);
  }

  private static String hostPort(InetSocketAddress a) {
    return a.getAddress().getHostAddress() + ":" + a.getPort();
  }
}
