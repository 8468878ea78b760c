package dev.nodemesh.model.kind;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.AuthorizationPolicy;
import dev.nodemesh.api.config.v1.EndpointList;
import dev.nodemesh.api.config.v1.NamedPort;
import dev.nodemesh.api.config.v1.PeerAuthentication;
import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.ServicePort;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every rule the client checks before a resource may reach a snapshot, one row each. */
class KindDecodeTest {
  private static final Workload GOOD_POD =
      Workload.newBuilder()
          .setUid("u1")
          .setName("echo-1")
          .setNamespace("default")
          .setServiceAccount("echo")
          .setNode("n1")
          .addIps("10.1.0.1")
          .putLabels("app", "echo")
          .addPorts(NamedPort.newBuilder().setName("http").setPort(8080))
          .setReady(true)
          .build();
  private static final Service GOOD_SERVICE =
      Service.newBuilder()
          .setName("echo")
          .setNamespace("default")
          .addVips("10.96.0.10")
          .addPorts(ServicePort.newBuilder().setPort(80).setTargetPortName("http"))
          .setSelector(Selector.newBuilder().putMatchLabels("app", "echo"))
          .build();

  @Test
  void theTunnelFieldSaysWhetherANodeProxyServesThePod() {
    ResourceDecoder d = new ResourceDecoder(new ArrayList<>());
    var plain = WorkloadKind.WIRE.decode(d, "default/echo-1", GOOD_POD);
    var hbone =
        WorkloadKind.WIRE.decode(
            d, "default/echo-1", GOOD_POD.toBuilder().setTunnel(TunnelProtocol.HBONE).build());
    assertNotNull(plain);
    assertNotNull(hbone);
    assertFalse(plain.captured());
    assertTrue(hbone.captured());
    assertEquals(
        TunnelProtocol.HBONE, WorkloadKind.encode(hbone, true).getTunnel(), "round trip: captured");
    assertEquals(
        TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED,
        WorkloadKind.encode(plain, true).getTunnel(),
        "round trip: outside the mesh");
  }

  @Test
  void goodResourcesDecode() {
    List<String> errors = new ArrayList<>();
    ResourceDecoder d = new ResourceDecoder(errors);
    var w = WorkloadKind.WIRE.decode(d, "default/echo-1", GOOD_POD);
    assertNotNull(w);
    assertEquals(8080, w.namedPort("http"));
    MeshService s = ServiceKind.WIRE.decode(d, "default/echo", GOOD_SERVICE);
    assertNotNull(s);
    assertEquals("http", s.ports().get(0).targetPortName());
    assertEquals("tcp", s.ports().get(0).appProtocol());
    assertEquals(List.of(), errors);
    assertEquals(Set.of(), s.endpointUids());

    MeshService manual =
        ServiceKind.WIRE.decode(
            d,
            "default/echo",
            GOOD_SERVICE.toBuilder()
                .setEndpointList(EndpointList.newBuilder().addWorkloadUids("u1"))
                .build());
    assertNotNull(manual);
    assertEquals(Map.of(), manual.selector());
    assertEquals(true, manual.selects(w));
  }

  static List<Arguments> badWorkloads() {
    return List.of(
        bad("wrong resource name", b -> b.setName("other"), "Workload default/echo-1: name:"),
        bad("no uid", b -> b.setUid(""), "uid: is required"),
        bad("no IP", Workload.Builder::clearIps, "ips: at least one IP is required"),
        bad("bad IP", b -> b.setIps(0, "10.1.0.300"), "ips[0]: \"10.1.0.300\" is not an IP"),
        bad("IP twice", b -> b.addIps("10.1.0.1"), "ips[1]: 10.1.0.1 is listed twice"),
        bad(
            "bad port name",
            b -> b.addPorts(NamedPort.newBuilder().setName("HTTP").setPort(1)),
            "ports[1].name"),
        bad(
            "port out of range",
            b -> b.addPorts(NamedPort.newBuilder().setName("admin").setPort(70000)),
            "ports[1].port: 70000 is out of range"),
        bad(
            "port name twice",
            b -> b.addPorts(NamedPort.newBuilder().setName("http").setPort(9090)),
            "ports[1].name: \"http\" is declared twice"));
  }

  private static Arguments bad(String what, UnaryOperator<Workload.Builder> edit, String error) {
    return Arguments.of(what, edit.apply(GOOD_POD.toBuilder()).build(), error);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badWorkloads")
  void badWorkloadsAreRefusedWithTheirField(String what, Workload w, String error) {
    List<String> errors = new ArrayList<>();
    assertNull(WorkloadKind.WIRE.decode(new ResourceDecoder(errors), "default/echo-1", w));
    assertEquals(1, errors.size(), errors.toString());
    assertEquals(true, errors.get(0).contains(error), errors.get(0));
  }

  static List<Arguments> badServices() {
    return List.of(
        svc("bad VIP", b -> b.setVips(0, "ten"), "Service default/echo: vips[0]: \"ten\""),
        svc(
            "no target",
            b -> b.setPorts(0, ServicePort.newBuilder().setPort(80)),
            "ports[0].target: target_port or target_port_name is required"),
        svc(
            "target out of range",
            b -> b.setPorts(0, ServicePort.newBuilder().setPort(80).setTargetPort(0)),
            "ports[0].target_port: 0 is out of range"),
        svc(
            "port twice",
            b -> b.addPorts(ServicePort.newBuilder().setPort(80).setTargetPort(81)),
            "ports[1].port: 80 is listed twice"),
        svc(
            "empty selector",
            b -> b.setSelector(Selector.getDefaultInstance()),
            "selector.match_labels"));
  }

  private static Arguments svc(String what, UnaryOperator<Service.Builder> edit, String error) {
    return Arguments.of(what, edit.apply(GOOD_SERVICE.toBuilder()).build(), error);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badServices")
  void badServicesAreRefusedWithTheirField(String what, Service s, String error) {
    List<String> errors = new ArrayList<>();
    assertNull(ServiceKind.WIRE.decode(new ResourceDecoder(errors), "default/echo", s));
    assertEquals(1, errors.size(), errors.toString());
    assertEquals(true, errors.get(0).contains(error), errors.get(0));
  }

  private static final AuthorizationPolicy GOOD_POLICY =
      AuthorizationPolicy.newBuilder()
          .setName("p")
          .setNamespace("default")
          .setAction(AuthorizationPolicy.Action.DENY)
          .addRules(
              AuthorizationPolicy.Rule.newBuilder()
                  .addFrom(
                      AuthorizationPolicy.Source.newBuilder()
                          .addPrincipals("*/sa/x")
                          .addNotIpBlocks("fd00::/8"))
                  .addTo(AuthorizationPolicy.Operation.newBuilder().addNotPorts(22)))
          .build();

  @Test
  void goodPoliciesDecode() {
    List<String> errors = new ArrayList<>();
    var p =
        AuthorizationPolicyKind.WIRE.decode(new ResourceDecoder(errors), "default/p", GOOD_POLICY);
    assertNotNull(p);
    assertEquals(dev.nodemesh.model.config.AuthorizationPolicy.Action.DENY, p.action());
    assertEquals(Map.of(), p.selector());
    assertEquals(
        "fd00:0:0:0:0:0:0:0/8", p.rules().get(0).from().get(0).notIpBlocks().get(0).toString());
    var pa =
        PeerAuthenticationKind.WIRE.decode(
            new ResourceDecoder(errors),
            "ns/strict",
            PeerAuthentication.newBuilder()
                .setName("strict")
                .setNamespace("ns")
                .setMode(PeerAuthentication.Mode.STRICT)
                .build());
    assertNotNull(pa);
    assertNull(pa.selector());
    assertEquals(List.of(), errors);
  }

  static List<Arguments> badPolicies() {
    return List.of(
        pol(
            "no action",
            b -> b.setAction(AuthorizationPolicy.Action.ACTION_UNSPECIFIED),
            "action:"),
        pol(
            "pattern with a star inside",
            b ->
                b.setRules(
                    0,
                    GOOD_POLICY.getRules(0).toBuilder()
                        .setFrom(
                            0,
                            GOOD_POLICY.getRules(0).getFrom(0).toBuilder()
                                .setPrincipals(0, "a*b"))),
            "rules[0].from[0].principals[0]"),
        pol(
            "exact principal that is not a SPIFFE ID",
            b ->
                b.setRules(
                    0,
                    GOOD_POLICY.getRules(0).toBuilder()
                        .setFrom(
                            0,
                            GOOD_POLICY.getRules(0).getFrom(0).toBuilder()
                                .setPrincipals(0, "alice"))),
            "is not a spiffe:// URI"),
        pol(
            "bad CIDR",
            b ->
                b.setRules(
                    0,
                    GOOD_POLICY.getRules(0).toBuilder()
                        .setFrom(
                            0,
                            GOOD_POLICY.getRules(0).getFrom(0).toBuilder()
                                .setNotIpBlocks(0, "fd00::/129"))),
            "not_ip_blocks[0]"),
        pol(
            "empty source",
            b ->
                b.setRules(
                    0,
                    GOOD_POLICY.getRules(0).toBuilder()
                        .setFrom(0, AuthorizationPolicy.Source.getDefaultInstance())),
            "rules[0].from[0]: is empty"),
        pol(
            "port 0",
            b ->
                b.setRules(
                    0,
                    GOOD_POLICY.getRules(0).toBuilder()
                        .setTo(0, AuthorizationPolicy.Operation.newBuilder().addPorts(0))),
            "rules[0].to[0].ports[0]: 0 is out of range"),
        pol("wrong name", b -> b.setName("q"), "AuthorizationPolicy default/p: name:"));
  }

  private static Arguments pol(
      String what, UnaryOperator<AuthorizationPolicy.Builder> edit, String error) {
    return Arguments.of(what, edit.apply(GOOD_POLICY.toBuilder()).build(), error);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badPolicies")
  void badPoliciesAreRefusedWithTheirField(String what, AuthorizationPolicy p, String error) {
    List<String> errors = new ArrayList<>();
    assertNull(AuthorizationPolicyKind.WIRE.decode(new ResourceDecoder(errors), "default/p", p));
    assertEquals(1, errors.size(), errors.toString());
    assertEquals(true, errors.get(0).contains(error), errors.get(0));
  }

  @Test
  void aPeerAuthenticationNeedsAMode() {
    List<String> errors = new ArrayList<>();
    assertNull(
        PeerAuthenticationKind.WIRE.decode(
            new ResourceDecoder(errors),
            "ns/x",
            PeerAuthentication.newBuilder().setName("x").setNamespace("ns").build()));
    assertEquals(
        List.of("PeerAuthentication ns/x: mode: MODE_UNSPECIFIED is not STRICT or PERMISSIVE"),
        errors);
  }

  private static final dev.nodemesh.api.config.v1.HttpFault GOOD_FAULT =
      dev.nodemesh.api.config.v1.HttpFault.newBuilder()
          .setName("f")
          .setNamespace("default")
          .setDelay(
              dev.nodemesh.api.config.v1.HttpFault.Delay.newBuilder()
                  .setFixedDelayMs(100)
                  .setPerMillion(500_000))
          .setAbort(
              dev.nodemesh.api.config.v1.HttpFault.Abort.newBuilder()
                  .setHttpStatus(503)
                  .setPerMillion(1_000_000))
          .build();

  @Test
  void aGoodFaultDecodes() {
    List<String> errors = new ArrayList<>();
    var f = HttpFaultKind.WIRE.decode(new ResourceDecoder(errors), "default/f", GOOD_FAULT);
    assertEquals(List.of(), errors);
    assertNotNull(f);
    assertEquals(
        new dev.nodemesh.model.config.HttpFault(
            "f",
            "default",
            new dev.nodemesh.model.config.HttpFault.Delay(
                java.time.Duration.ofMillis(100), 500_000),
            new dev.nodemesh.model.config.HttpFault.Abort(503, null, 1_000_000)),
        f);
  }

  @Test
  void aSubMillisecondDelayDecodesExactlyAndFixedDelayWinsOverItsRoundedCopy() {
    List<String> errors = new ArrayList<>();
    var exact =
        GOOD_FAULT.toBuilder()
            .setDelay(
                GOOD_FAULT.getDelay().toBuilder()
                    .setFixedDelayMs(2) // what a control plane sends older proxies: rounded up
                    .setFixedDelay(com.google.protobuf.Duration.newBuilder().setNanos(1_250_000)))
            .build();
    var f = HttpFaultKind.WIRE.decode(new ResourceDecoder(errors), "default/f", exact);
    assertEquals(List.of(), errors);
    assertNotNull(f);
    assertEquals(java.time.Duration.ofNanos(1_250_000), f.delay().fixed());
    // A message from an older control plane (only the milliseconds field) still reads.
    var old = HttpFaultKind.WIRE.decode(new ResourceDecoder(errors), "default/f", GOOD_FAULT);
    assertEquals(List.of(), errors);
    assertEquals(java.time.Duration.ofMillis(100), old.delay().fixed());
  }

  @Test
  void theNewFieldSurvivesTheWireAndAnOldReaderSeesTheRoundedMilliseconds() throws Exception {
    var exact =
        GOOD_FAULT.toBuilder()
            .setDelay(
                GOOD_FAULT.getDelay().toBuilder()
                    .setFixedDelayMs(1)
                    .setFixedDelay(com.google.protobuf.Duration.newBuilder().setNanos(400_000)))
            .build();
    byte[] wire = exact.toByteArray();
    var back = dev.nodemesh.api.config.v1.HttpFault.parseFrom(wire);
    assertEquals(400_000, back.getDelay().getFixedDelay().getNanos());
    // An old reader (no field 3) keeps fields 1 and 2 and skips 3 as unknown: Delay without it.
    var oldShape =
        dev.nodemesh.api.config.v1.HttpFault.Delay.parseFrom(
            back.getDelay().toBuilder().clearFixedDelay().build().toByteArray());
    assertEquals(1, oldShape.getFixedDelayMs());
    assertEquals(500_000, oldShape.getPerMillion());
  }

  static List<Arguments> badFaults() {
    var d = GOOD_FAULT.getDelay();
    var a = GOOD_FAULT.getAbort();
    return List.of(
        fault("neither", b -> b.clearDelay().clearAbort(), "HttpFault default/f: delay: delay or"),
        fault(
            "zero delay",
            b -> b.setDelay(d.toBuilder().setFixedDelayMs(0)),
            "delay.fixed_delay_ms"),
        fault(
            "zero exact delay",
            b ->
                b.setDelay(
                    d.toBuilder()
                        .setFixedDelayMs(5)
                        .setFixedDelay(com.google.protobuf.Duration.getDefaultInstance())),
            "delay.fixed_delay: must be above 0"),
        fault(
            "negative exact delay",
            b ->
                b.setDelay(
                    d.toBuilder()
                        .setFixedDelay(com.google.protobuf.Duration.newBuilder().setSeconds(-1))),
            "delay.fixed_delay: is not a valid positive google.protobuf.Duration"),
        fault(
            "bad nanos",
            b ->
                b.setDelay(
                    d.toBuilder()
                        .setFixedDelay(
                            com.google.protobuf.Duration.newBuilder().setNanos(1_000_000_000))),
            "delay.fixed_delay: is not a valid positive google.protobuf.Duration"),
        fault(
            "delay share",
            b -> b.setDelay(d.toBuilder().setPerMillion(1_000_001)),
            "delay.per_million: 1000001 is not in 0-1000000"),
        fault(
            "abort share",
            b -> b.setAbort(a.toBuilder().setPerMillion(-1)),
            "abort.per_million: 4294967295 is not in 0-1000000"),
        fault(
            "http status",
            b -> b.setAbort(a.toBuilder().setHttpStatus(99)),
            "abort.http_status: 99 is not in 200-599"),
        fault(
            "grpc status",
            b -> b.setAbort(a.toBuilder().setGrpcStatus(17)),
            "abort.grpc_status: 17 is not in 1-16"),
        fault("wrong name", b -> b.setName("g"), "HttpFault default/f: name:"));
  }

  private static Arguments fault(
      String what, UnaryOperator<dev.nodemesh.api.config.v1.HttpFault.Builder> edit, String error) {
    return Arguments.of(what, edit.apply(GOOD_FAULT.toBuilder()).build(), error);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badFaults")
  void badFaultsAreRefusedWithTheirField(
      String what, dev.nodemesh.api.config.v1.HttpFault f, String error) {
    List<String> errors = new ArrayList<>();
    assertNull(HttpFaultKind.WIRE.decode(new ResourceDecoder(errors), "default/f", f));
    assertEquals(1, errors.size(), errors.toString());
    assertEquals(true, errors.get(0).contains(error), errors.get(0));
  }

  @Test
  void aGrpcRoutesResourceNameCarriesItsKind() {
    var route =
        dev.nodemesh.api.config.v1.HttpRoute.newBuilder()
            .setName("echo")
            .setNamespace("default")
            .setGrpc(true)
            .addParents(
                dev.nodemesh.api.config.v1.RouteParent.newBuilder()
                    .setNamespace("default")
                    .setService("echo"))
            .build();
    List<String> errors = new ArrayList<>();
    assertNotNull(
        HttpRouteKind.WIRE.decode(new ResourceDecoder(errors), "GRPCRoute/default/echo", route));
    assertEquals(List.of(), errors);
    assertNull(HttpRouteKind.WIRE.decode(new ResourceDecoder(errors), "default/echo", route));
    assertEquals(
        List.of("HttpRoute default/echo: name: resource name must be \"GRPCRoute/default/echo\""),
        errors);
  }
}
