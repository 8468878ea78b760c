package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.TestJson;
import dev.nodemesh.proxy.NodeProxyConfig;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Where the plugin records pods: the place a proxy serving the same socket reads them from. */
class PluginConfigTest {
  private static PluginConfig parse(String json) throws Exception {
    return PluginConfig.from((ObjectNode) TestJson.JSON.readTree(json));
  }

  @Test
  void withoutRunDirTheRecordsGoWhereTheProxyOfThatSocketLooks() throws Exception {
    assertEquals(PluginConfig.DEFAULT_RUN_DIR, parse("{\"type\": \"nodemesh\"}").runDir());
    assertEquals(
        NodeProxyConfig.defaultCniRunDir(NodeProxyConfig.DEFAULT_AGENT_SOCKET),
        PluginConfig.DEFAULT_RUN_DIR);
    Path socket = Path.of("/run/node-a/agent.sock");
    assertEquals(
        NodeProxyConfig.defaultCniRunDir(socket),
        parse("{\"type\": \"nodemesh\", \"agentSocket\": \"" + socket + "\"}").runDir());
    assertEquals(Path.of("/run/node-a/cni"), NodeProxyConfig.defaultCniRunDir(socket));
  }

  @Test
  void anExplicitRunDirWins() throws Exception {
    assertEquals(
        Path.of("/x/records"),
        parse(
                "{\"type\": \"nodemesh\", \"agentSocket\": \"/run/a/agent.sock\","
                    + " \"runDir\": \"/x/records\"}")
            .runDir());
  }
}
