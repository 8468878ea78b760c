package dev.nodemesh.model.admin;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin {@code /logging} handler, mounted by both daemons' {@link AdminHttpServer} (the node
 * proxy's {@code AdminServer}, the control plane's {@code HealthServer}), so both answer the same
 * way.
 *
 * <p>GET lists every logger with a level of its own (JSON, {@code {"backend": "logback", "levels":
 * {name: level}}}); POST or PUT {@code ?logger=dev.nodemesh.proxy&level=debug} sets one (default
 * logger ROOT; {@code level=inherit} clears it), answering {@code "<logger> <effective level>"}. An
 * unknown level or a malformed logger name is 400, a GET that asks for a change or any other method
 * 405, and an slf4j backend other than Logback 501. It runs on the admin's worker pool (through
 * {@link ExchangeAdapter}; it is a JDK {@code HttpHandler}, so a JDK server can mount it too),
 * never a data-plane loop.
 *
 * <p>A change is accepted only from a loopback peer (127.0.0.0/8, ::1): the admin port has no
 * authentication and is bound to the pod or node IP in the manifests, so anyone who can reach it
 * could otherwise turn on DEBUG (log volume, and whatever DEBUG lines say) on every node. {@code
 * kubectl port-forward} and {@code kubectl exec ... curl 127.0.0.1} arrive on loopback. Other peers
 * get 403 naming the rule, before the request is validated; reading levels stays open, like {@code
 * /metrics}. The peer is the TCP peer address, not a forwarded-for header.
 */
public final class LoggingEndpoint implements HttpHandler {
  private static final Logger log = LoggerFactory.getLogger(LoggingEndpoint.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Predicate<InetAddress> mayChange;

  /** Level changes from loopback peers only. */
  public LoggingEndpoint() {
    this(InetAddress::isLoopbackAddress);
  }

  /** Level changes from peers {@code mayChange} accepts (tests). */
  public LoggingEndpoint(Predicate<InetAddress> mayChange) {
    this.mayChange = mayChange;
  }

  @Override
  public void handle(HttpExchange ex) throws IOException {
    Map<String, String> query = query(ex.getRequestURI().getRawQuery());
    String method = ex.getRequestMethod();
    boolean change = method.equals("POST") || method.equals("PUT");
    if (!change && !method.equals("GET")) {
      send(ex, 405, "text/plain", "GET lists levels; POST or PUT changes one\n");
      return;
    }
    InetAddress peer = ex.getRemoteAddress().getAddress();
    if (change && !mayChange.test(peer)) {
      log.warn("admin: refused a log level change from {}", peer.getHostAddress());
      send(
          ex,
          403,
          "text/plain",
          "log levels change only from loopback (kubectl port-forward, or kubectl exec and curl"
              + " 127.0.0.1); this request came from "
              + peer.getHostAddress()
              + "\n");
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
      String logger = query.getOrDefault("logger", Logger.ROOT_LOGGER_NAME);
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
}
