package dev.nodemesh.proxy;

import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * Start-up settings of one node proxy. Built by the {@code nodemesh proxy} command and by tests.
 *
 * @param transport which Netty transport drives every socket (epoll by default on Linux)
 * @param configDir directory of Kubernetes-shaped YAML (Pods, Services) read at start and on
 *     change; the local option when there is no control plane. Exactly one of this and {@code
 *     xdsTarget} is set.
 * @param agentSocket path of the node agent's Unix socket
 * @param adminAddress where /metrics, /healthz and /ready are served (its own thread)
 * @param nodeName the node this proxy serves, used in metrics labels
 * @param workerThreads data-plane event-loop threads (0 = Netty's default, 2 x cores)
 * @param interception iptables (default) or eBPF, and where eBPF attaches and pins
 * @param xdsTarget the control plane's gRPC target ({@code host:port}); config then comes over xDS
 * @param accessLog {@code --access-log} and {@code --access-log-sample}
 */
public record NodeProxyConfig(
    TransportKind transport,
    @Nullable Path configDir,
    Path agentSocket,
    InetSocketAddress adminAddress,
    String nodeName,
    int workerThreads,
    InterceptionMode interception,
    @Nullable String xdsTarget,
    AccessLogSettings accessLog) {

  public NodeProxyConfig {
    if ((configDir == null) == (xdsTarget == null)) {
      throw new IllegalArgumentException("exactly one of a config directory and an xDS target");
    }
  }

  /** Without an access log. */
  public NodeProxyConfig(
      TransportKind transport,
      @Nullable Path configDir,
      Path agentSocket,
      InetSocketAddress adminAddress,
      String nodeName,
      int workerThreads,
      InterceptionMode interception,
      @Nullable String xdsTarget) {
    this(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        AccessLogSettings.OFF);
  }

  /** The same settings with the access log going to {@code settings}. */
  public NodeProxyConfig withAccessLog(AccessLogSettings settings) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        settings);
  }

  /** Config from a YAML directory, iptables interception: no control plane, the defaults. */
  public NodeProxyConfig(
      TransportKind transport,
      Path configDir,
      Path agentSocket,
      InetSocketAddress adminAddress,
      String nodeName,
      int workerThreads) {
    this(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        InterceptionMode.iptables(),
        null);
  }

  public static final Path DEFAULT_AGENT_SOCKET = Path.of("/var/run/nodemesh/agent.sock");
  public static final int OUTBOUND_PORT = 15001;
  public static final int INBOUND_PORT = 15006;
  public static final int HBONE_PORT = 15008;
  public static final int ADMIN_PORT = 15020;
}
