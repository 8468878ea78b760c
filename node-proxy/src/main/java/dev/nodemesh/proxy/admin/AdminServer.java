package dev.nodemesh.proxy.admin;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin endpoint (15020 by default, localhost): {@code /metrics} for Prometheus, {@code
 * /healthz}, {@code /ready} (see {@link Readiness}; 503 with the reason when not), {@code
 * /config_dump} (JSON, see {@link ConfigDump}) and {@code /logging}. It runs on its own single
 * thread, never on a data-plane event loop, so a slow scrape cannot delay traffic.
 *
 * <p>{@code /logging}: GET lists every logger with a level of its own (JSON, {@code {"backend":
 * ..., "levels": {name: level}}}); POST or PUT {@code ?logger=dev.nodemesh.proxy&level=debug} sets
 * one (default logger ROOT; {@code level=inherit} clears it), answering the effective level; an
 * unknown level or logger name is 400, a GET that asks for a change 405, and a backend other than
 * Logback 501. Like everything here it runs on the admin thread, on localhost unless {@code
 * --admin} says otherwise.
 */
public final class AdminServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AdminServer.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final HttpServer server;
  private final ExecutorService thread;

  private AdminServer(HttpServer server, ExecutorService thread) {
    this.server = server;
    this.thread = thread;
  }

  public static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<String> configDump)
      throws IOException {
    HttpServer server = HttpServer.create(address, 64);
    ExecutorService thread =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-admin");
              t.setDaemon(true);
              return t;
            });
    server.setExecutor(thread);
    server.createContext(
        "/metrics", ex -> send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.get()));
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
    server.createContext("/config_dump", ex -> send(ex, 200, "application/json", configDump.get()));
    server.createContext("/logging", AdminServer::logging);
    server.start();
    return new AdminServer(server, thread);
  }

  public InetSocketAddress address() {
    return server.getAddress();
  }

  private static void logging(HttpExchange ex) throws IOException {
    Map<String, String> query = query(ex.getRequestURI().getRawQuery());
    String method = ex.getRequestMethod();
    boolean change = method.equals("POST") || method.equals("PUT");
    if (!change && !method.equals("GET")) {
      send(ex, 405, "text/plain", "GET lists levels; POST or PUT changes one\n");
      return;
    }
    if (!change && query.containsKey("level")) {
      send(ex, 405, "text/plain", "use POST or PUT to change a level\n");
      return;
    }
    if (!LogLevels.available()) {
      send(
          ex,
          501,
          "text/plain",
          "the slf4j backend is "
              + LoggerFactory.getILoggerFactory().getClass().getName()
              + ", not Logback: levels cannot change at run time\n");
      return;
    }
    if (change) {
      String level = query.get("level");
      if (level == null) {
        send(ex, 400, "text/plain", "missing ?level=\n");
        return;
      }
      String logger = query.getOrDefault("logger", org.slf4j.Logger.ROOT_LOGGER_NAME);
      try {
        String effective = LogLevels.set(logger, level);
        log.info("admin: logger {} level set to {} (effective {})", logger, level, effective);
        send(ex, 200, "text/plain", logger + " " + effective + "\n");
      } catch (IllegalArgumentException e) {
        send(ex, 400, "text/plain", e.getMessage() + "\n");
      }
      return;
    }
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("backend", "logback");
    body.put("levels", LogLevels.explicit());
    send(ex, 200, "application/json", JSON.writeValueAsString(body) + "\n");
  }

  private static Map<String, String> query(@Nullable String raw) {
    Map<String, String> out = new LinkedHashMap<>();
    if (raw == null || raw.isEmpty()) {
      return out;
    }
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      String k = eq < 0 ? pair : pair.substring(0, eq);
      String v = eq < 0 ? "" : pair.substring(eq + 1);
      out.put(
          URLDecoder.decode(k, StandardCharsets.UTF_8),
          URLDecoder.decode(v, StandardCharsets.UTF_8));
    }
    return out;
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
    server.stop(0);
    thread.shutdownNow();
  }
}
