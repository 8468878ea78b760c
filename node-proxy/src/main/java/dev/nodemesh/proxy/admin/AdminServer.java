package dev.nodemesh.proxy.admin;

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
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * The admin endpoint (15020 by default, localhost): {@code /metrics} for Prometheus, {@code
 * /healthz}, {@code /ready} (see {@link Readiness}; 503 with the reason when not), {@code
 * /config_dump} (JSON, see {@link ConfigDump}) and {@code /logging}. It runs on its own single
 * thread, never on a data-plane event loop, so a slow scrape cannot delay traffic.
 *
 * <p>{@code /logging}: see {@link LoggingEndpoint} (shared with the control plane). Like everything
 * here it runs on the admin thread, on localhost unless {@code --admin} says otherwise; when {@code
 * --admin} names another address the same handlers also answer on 127.0.0.1 ({@link
 * AdminListeners}), where level changes are allowed.
 */
public final class AdminServer implements AutoCloseable {

  private final List<HttpServer> servers;
  private final ExecutorService thread;

  private AdminServer(List<HttpServer> servers, ExecutorService thread) {
    this.servers = servers;
    this.thread = thread;
  }

  public static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<String> configDump)
      throws IOException {
    List<HttpServer> servers = AdminListeners.bind(address);
    ExecutorService thread =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-admin");
              t.setDaemon(true);
              return t;
            });
    LoggingEndpoint logging = new LoggingEndpoint();
    for (HttpServer server : servers) {
      server.setExecutor(thread);
      server.createContext(
          "/metrics",
          ex -> send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.get()));
      server.createContext("/healthz", ex -> send(ex, 200, "text/plain", "ok\n"));
      server.createContext(
          "/ready",
          ex -> {
            String reason = notReadyReason.get();
            send(
                ex,
                reason == null ? 200 : 503,
                "text/plain",
                reason == null ? "ready\n" : "not ready: " + reason + "\n");
          });
      server.createContext(
          "/config_dump", ex -> send(ex, 200, "application/json", configDump.get()));
      server.createContext("/logging", logging);
      server.start();
    }
    return new AdminServer(servers, thread);
  }

  public InetSocketAddress address() {
    return servers.get(0).getAddress();
  }

  private static void send(HttpExchange ex, int status, String type, String body)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", type);
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
