package dev.nodemesh.control.e2e;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.state.StateSettings;
import dev.nodemesh.proxy.testing.TestNode;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;

/**
 * For the root tests that start a node's proxy before its control plane, or stop the control plane
 * and bring it back: the control plane (no CA) serves the {@link TestNode}'s config directory over
 * xDS on a loopback port the test picks once, so the proxy's one xDS target stays right across the
 * control plane's restarts. Limit: the port is free when picked, not reserved, so another process
 * could take it before the control plane binds it.
 */
final class FixedPortControlPlane {
  private FixedPortControlPlane() {}

  /** A loopback port nothing listens on right now. */
  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /**
   * The control plane serving {@code node}'s config directory over xDS on 127.0.0.1:{@code port}.
   */
  static ControlPlane start(TestNode node, int port) throws Exception {
    return ControlPlane.start(
        new LocalSource(node.configDir(), 50),
        new InetSocketAddress("127.0.0.1", port),
        null,
        Duration.ofMillis(20));
  }

  /**
   * {@code node}'s plain proxy settings ({@link TestNode#proxyConfig()}) in {@code interception}'s
   * mode, with its config from the control plane on {@code port} instead of files and its saved
   * state under {@code state}.
   */
  static NodeProxyConfig.Builder proxyConfig(
      TestNode node, InterceptionMode interception, int port, Path state) {
    return node.proxyConfig()
        .configDir(null)
        .interception(interception)
        .xdsTarget("127.0.0.1:" + port)
        .state(new StateSettings(state));
  }
}
