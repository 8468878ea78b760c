package dev.nodemesh.control.admin;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.nodemesh.model.admin.AdminListeners;
import dev.nodemesh.model.admin.LoggingEndpoint;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * {@code /healthz} (the process answers), {@code /ready} (the source has synced and the first push
 * was computed; 503 before), {@code /metrics} (Prometheus) and {@code /logging} (log levels at run
 * time: the node proxy's {@link LoggingEndpoint}, so both answer alike). One thread of its own, so
 * a slow scrape never delays the xDS executor. Bound to the {@code --admin} address (127.0.0.1 by
 * default, the pod IP in the manifests) and then also to 127.0.0.1 on the same port ({@link
 * AdminListeners}): level changes are accepted from loopback peers only.
 */
public final class HealthServer implements AutoCloseable {
  private final List<HttpServer> servers;
  private final ExecutorService thread;

  private HealthServer(List<HttpServer> servers, ExecutorService thread) {
    this.servers = servers;
    this.thread = thread;
  }

  public static HealthServer start(
      InetSocketAddress address, BooleanSupplier ready, Supplier<String> metrics)
      throws IOException {
    List<HttpServer> servers = AdminListeners.bind(address);
    ExecutorService thread =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-control-admin");
              t.setDaemon(true);
              return t;
            });
    LoggingEndpoint logging = new LoggingEndpoint();
    for (HttpServer server : servers) {
      server.setExecutor(thread);
      server.createContext("/healthz", ex -> send(ex, 200, "ok\n"));
      server.createContext(
          "/ready",
          ex -> {
            boolean ok = ready.getAsBoolean();
            send(ex, ok ? 200 : 503, ok ? "ready\n" : "not ready\n");
          });
      server.createContext("/metrics", ex -> send(ex, 200, metrics.get()));
      server.createContext("/logging", logging);
      server.start();
    }
    return new HealthServer(servers, thread);
  }

  public InetSocketAddress address() {
    return servers.get(0).getAddress();
  }

  private static void send(HttpExchange ex, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
    ex.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }

  @Override
  public void close() {
    servers.forEach(s -> s.stop(0));
    thread.shutdownNow();
  }
}
