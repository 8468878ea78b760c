package dev.nodemesh.proxy.admin;

import dev.nodemesh.model.admin.AdminHttpServer;
import dev.nodemesh.model.admin.AdminHttpServer.Answer;
import dev.nodemesh.model.admin.AdminHttpServer.Route;
import dev.nodemesh.model.admin.LoggingEndpoint;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * The node proxy's admin endpoint (15020 by default, localhost): {@code /metrics} for Prometheus,
 * {@code /healthz} (503 with the reason while an event loop lags or has stopped), {@code /ready}
 * (see {@link Readiness}; 503 with the reason when not), {@code /config_dump} (JSON, see {@link
 * ConfigDump}) and {@code /logging} ({@link LoggingEndpoint}, shared with the control plane). The
 * server itself, its threads ({@code nodemesh-admin-io} answers the probes, {@code nodemesh-admin}
 * the rest), limits and the extra 127.0.0.1 listener are model's {@link AdminHttpServer}, which the
 * control plane's admin runs too.
 *
 * <p>{@code /config_dump} (every workload, policy and route of the node) and level changes answer
 * loopback peers only (127.0.0.0/8, ::1: {@code kubectl port-forward}, {@code kubectl exec ... curl
 * 127.0.0.1}); other peers get 403. The peer is the TCP peer address, never a header.
 */
public final class AdminServer implements AutoCloseable {
  /** A complete request must arrive within this of connecting or of the previous answer. */
  public static final Duration REQUEST_TIMEOUT = AdminHttpServer.REQUEST_TIMEOUT;

  public static final int MAX_CONNECTIONS = AdminHttpServer.MAX_CONNECTIONS;
  static final int WORKERS = AdminHttpServer.WORKERS;
  static final int QUEUE = AdminHttpServer.QUEUE;

  private final AdminHttpServer server;

  private AdminServer(AdminHttpServer server) {
    this.server = server;
  }

  /** Names the answering process on every response ({@link AdminHttpServer#PID_HEADER}). */
  public static final String PID_HEADER = AdminHttpServer.PID_HEADER;

  public static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<String> configDump)
      throws IOException {
    return start(address, metrics, notReadyReason, () -> null, configDump);
  }

  /**
   * As above, with {@code /healthz} answering 503 and the reason while {@code unhealthyReason}
   * gives one (an event loop that lags or has stopped, see {@code liveness.LoopWatchdog}).
   */
  public static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<@Nullable String> unhealthyReason,
      Supplier<String> configDump)
      throws IOException {
    return start(
        address,
        metrics,
        notReadyReason,
        unhealthyReason,
        configDump,
        InetAddress::isLoopbackAddress,
        REQUEST_TIMEOUT);
  }

  /** With the rule for loopback-only paths and the request timeout; {@code /healthz} always ok. */
  static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<String> configDump,
      Predicate<InetAddress> privileged,
      Duration requestTimeout)
      throws IOException {
    return start(
        address, metrics, notReadyReason, () -> null, configDump, privileged, requestTimeout);
  }

  /**
   * With the rule for loopback-only paths and the request timeout (tests). The listening sockets
   * are opened on the calling thread, so a caller inside a network namespace binds there.
   */
  static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<@Nullable String> unhealthyReason,
      Supplier<String> configDump,
      Predicate<InetAddress> privileged,
      Duration requestTimeout)
      throws IOException {
    Map<String, Route> routes = new LinkedHashMap<>();
    routes.put(
        "/healthz",
        Route.onLoop(
            r -> {
              String reason = unhealthyReason.get();
              return reason == null
                  ? new Answer(200, "text/plain", "ok\n")
                  : new Answer(503, "text/plain", "unhealthy: " + reason + "\n");
            }));
    routes.put(
        "/ready",
        Route.onLoop(
            r -> {
              String reason = notReadyReason.get();
              return reason == null
                  ? new Answer(200, "text/plain", "ready\n")
                  : new Answer(503, "text/plain", "not ready: " + reason + "\n");
            }));
    routes.put(
        "/metrics",
        Route.pooled(
            r -> new Answer(200, "text/plain; version=0.0.4; charset=utf-8", metrics.get())));
    routes.put(
        "/config_dump",
        Route.pooledForLoopback(
            "the config dump", r -> new Answer(200, "application/json", configDump.get())));
    routes.put("/logging", Route.pooledJdk(new LoggingEndpoint(privileged)));
    return new AdminServer(
        AdminHttpServer.start(address, "nodemesh-admin", routes, privileged, requestTimeout));
  }

  public InetSocketAddress address() {
    return server.address();
  }

  @Override
  public void close() {
    server.close();
  }
}
