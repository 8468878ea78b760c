package dev.nodemesh.cni.spec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The wire-format pieces on their own: no plugin, no agent. */
class SpecTest {
  private static ObjectNode json(String s) throws Exception {
    return (ObjectNode) TestJson.JSON.readTree(s);
  }

  @Test
  void resultsGainAndLoseIpVersionAcross100() throws Exception {
    ObjectNode v1 =
        json(
            "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\"},{\"address\":\"fd00::2/64\"}],"
                + "\"custom\":{\"kept\":true}}");
    ObjectNode down = Results.convert(v1, CniVersion.V0_4_0);
    assertEquals("0.4.0", down.path("cniVersion").asText());
    assertEquals("4", down.path("ips").get(0).path("version").asText());
    assertEquals("6", down.path("ips").get(1).path("version").asText());
    assertTrue(down.path("custom").path("kept").asBoolean());
    ObjectNode up = Results.convert(down, CniVersion.V1_1_0);
    assertFalse(up.path("ips").get(0).has("version"));
    assertEquals("1.1.0", up.path("cniVersion").asText());
    assertFalse(v1.path("ips").get(0).has("version"), "the input is not modified");
  }

  @Test
  void podIpsSkipHostSideInterfaces() throws Exception {
    ObjectNode r =
        json(
            "{\"interfaces\":[{\"name\":\"veth0\"},{\"name\":\"eth0\",\"sandbox\":\"/ns\"}],"
                + "\"ips\":[{\"address\":\"10.0.0.1/24\",\"interface\":0},"
                + "{\"address\":\"10.0.0.2/24\",\"interface\":1},{\"address\":\"fd00::2/64\"}]}");
    assertEquals(List.of("10.0.0.2", "fd00::2"), Results.podIps(r));
    assertEquals(
        7,
        assertThrows(
                CniError.class,
                () -> Results.podIps(json("{\"ips\":[{\"address\":\"10.0.0.2\"}]}")))
            .code());
  }

  @Test
  void cniArgsSplitIntoPairs() throws Exception {
    assertEquals(
        Map.of("IgnoreUnknown", "1", "K8S_POD_NAME", "a=b", "EMPTY", ""),
        CniEnv.parseArgs("IgnoreUnknown=1;K8S_POD_NAME=a=b;EMPTY="));
    assertEquals(Map.of(), CniEnv.parseArgs(""));
    assertEquals(4, assertThrows(CniError.class, () -> CniEnv.parseArgs("A=1;;B=2")).code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"this-name-is-too-long", "a/b", "a:b", "a b", ".", ".."})
  void badInterfaceNamesAreInvalidEnvironment(String ifname) {
    Map<String, String> env =
        Map.of(
            "CNI_COMMAND", "ADD",
            "CNI_CONTAINERID", "c",
            "CNI_NETNS", "/ns",
            "CNI_IFNAME", ifname,
            "CNI_PATH", "/bin");
    assertEquals(4, assertThrows(CniError.class, () -> CniEnv.from(env)).code());
  }

  @Test
  void unknownCommandIsInvalidEnvironment() {
    assertEquals(
        4, assertThrows(CniError.class, () -> CniEnv.from(Map.of("CNI_COMMAND", "FOO"))).code());
  }

  @Test
  void versionsOrderAndParse() throws Exception {
    assertTrue(CniVersion.parse("1.1.0").atLeast(CniVersion.V0_4_0));
    assertFalse(CniVersion.V0_3_1.atLeast(CniVersion.V0_4_0));
    CniError e = assertThrows(CniError.class, () -> CniVersion.parse(""));
    assertEquals(1, e.code());
    assertTrue(e.details().contains("0.1.0"), e.details());
  }

  @Test
  void errorJsonOmitsEmptyDetailsAndRoundTrips() throws Exception {
    ObjectNode j = new CniError(11, "later").toJson(CniVersion.V1_0_0);
    assertEquals("{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"later\"}", j.toString());
    CniError back = CniError.fromJson(new CniError(7, "bad", "why").toJson(CniVersion.LATEST));
    assertEquals(7, back.code());
    assertEquals("why", back.details());
  }
}
