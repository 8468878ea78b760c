package dev.nodemesh.control.admin;

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
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The control plane's admin endpoint: {@code /healthz} (the process answers), {@code /ready} (the
 * source has synced and the first push was computed; 503 before), {@code /metrics} (Prometheus) and
 * {@code /logging} (log levels at run time: the node proxy's {@link LoggingEndpoint}, so both
 * answer alike). Bound to the {@code --admin} address (127.0.0.1 by default, the pod IP in the
 * manifests) and then also to 127.0.0.1 on the same port; level changes are accepted from loopback
 * peers only.
 *
 * <p>The server is model's {@link AdminHttpServer}, as the node proxy's admin is, with the same
 * limits: its own event loop ({@code nodemesh-control-admin-io}) answers the probes, so neither a
 * slow client nor a slow scrape delays them or the xDS executor; scrapes and log levels run on
 * {@value AdminHttpServer#WORKERS} workers ({@code nodemesh-control-admin}, 503 when they and their
 * queue are full); a connection that has not sent a complete request within 10 s of connecting or
 * of its previous answer is closed, and at most {@value AdminHttpServer#MAX_CONNECTIONS} are open.
 */
public final class HealthServer implements AutoCloseable {
  /** The worker threads' name; the event loop's is this with {@code -io}. */
  static final String THREAD = "nodemesh-control-admin";

  private final AdminHttpServer server;

  private HealthServer(AdminHttpServer server) {
    this.server = server;
  }

  public static HealthServer start(
      InetSocketAddress address, BooleanSupplier ready, Supplier<String> metrics)
      throws IOException {
    return start(address, ready, metrics, AdminHttpServer.REQUEST_TIMEOUT);
  }

  /** With the request timeout (tests). */
  static HealthServer start(
      InetSocketAddress address,
      BooleanSupplier ready,
      Supplier<String> metrics,
      Duration requestTimeout)
      throws IOException {
    Map<String, Route> routes = new LinkedHashMap<>();
    routes.put("/healthz", Route.onLoop(r -> Answer.text(200, "ok\n")));
    // ready() reads one flag the push sets: cheap enough for the loop.
    routes.put(
        "/ready",
        Route.onLoop(
            r ->
                ready.getAsBoolean()
                    ? Answer.text(200, "ready\n")
                    : Answer.text(503, "not ready\n")));
    routes.put(
        "/metrics",
        Route.pooled(
            r -> new Answer(200, "text/plain; version=0.0.4; charset=utf-8", metrics.get())));
    routes.put("/logging", Route.pooledJdk(new LoggingEndpoint()));
    return new HealthServer(
        AdminHttpServer.start(
            address, THREAD, routes, InetAddress::isLoopbackAddress, requestTimeout));
  }

  public InetSocketAddress address() {
    return server.address();
  }

  @Override
  public void close() {
    server.close();
  }
}
