package dev.nodemesh.proxy;

import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Start-up settings of one node proxy. Built by the {@code nodemesh proxy} command and by tests.
 *
 * @param transport which Netty transport drives every socket (epoll by default on Linux)
 * @param configDir directory of Kubernetes-shaped YAML (Pods, Services) read at start and on
 *     change; replaced by xDS in the control-plane issue
 * @param agentSocket path of the node agent's Unix socket
 * @param adminAddress where /metrics, /healthz and /ready are served (its own thread)
 * @param nodeName the node this proxy serves, used in metrics labels
 * @param workerThreads data-plane event-loop threads (0 = Netty's default, 2 x cores)
 * @param interception iptables (default) or eBPF, and where eBPF attaches and pins
 */
public record NodeProxyConfig(
    TransportKind transport,
    Path configDir,
    Path agentSocket,
    InetSocketAddress adminAddress,
    String nodeName,
    int workerThreads,
    InterceptionMode interception) {

  /** iptables interception, the default. */
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
        InterceptionMode.iptables());
  }

  public static final Path DEFAULT_AGENT_SOCKET = Path.of("/var/run/nodemesh/agent.sock");
  public static final int OUTBOUND_PORT = 15001;
  public static final int INBOUND_PORT = 15006;
  public static final int HBONE_PORT = 15008;
  public static final int ADMIN_PORT = 15020;
}
