package dev.nodemesh.control.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The control plane's admin endpoint over real HTTP: health, readiness, metrics on the admin
 * thread, and {@code /logging} changing a level at run time (the same handler as the proxy's).
 */
class HealthServerTest {
  private static final String LOGGER = "dev.nodemesh.control.test.logging";

  private final AtomicBoolean ready = new AtomicBoolean();
  private final AtomicReference<String> scrapedOn = new AtomicReference<>();
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private HealthServer server;

  @BeforeEach
  void setUp() throws Exception {
    server =
        HealthServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            ready::get,
            () -> {
              scrapedOn.set(Thread.currentThread().getName());
              return "# metrics\n";
            });
  }

  @AfterEach
  void tearDown() {
    ((Logger) LoggerFactory.getLogger(LOGGER)).setLevel(null);
    server.close();
  }

  @Test
  void healthReadinessAndMetricsOnTheAdminThread() throws Exception {
    assertEquals(200, send("GET", "/healthz").statusCode());
    assertEquals(503, send("GET", "/ready").statusCode());
    ready.set(true);
    assertEquals(200, send("GET", "/ready").statusCode());
    assertEquals("# metrics\n", send("GET", "/metrics").body());
    assertEquals("nodemesh-control-admin", scrapedOn.get());
  }

  @Test
  void logLevelsChangeAtRunTime() throws Exception {
    Logger logger = (Logger) LoggerFactory.getLogger(LOGGER);
    assertTrue(!logger.isDebugEnabled(), "INFO by default");

    HttpResponse<String> set = send("POST", "/logging?logger=" + LOGGER + "&level=debug");
    assertEquals(200, set.statusCode(), set.body());
    assertEquals(LOGGER + " DEBUG\n", set.body());
    assertEquals(Level.DEBUG, logger.getLevel());
    assertTrue(LoggerFactory.getLogger(LOGGER + ".child").isDebugEnabled());

    JsonNode listed = new ObjectMapper().readTree(send("GET", "/logging").body());
    assertEquals("logback", listed.get("backend").asText());
    assertEquals("DEBUG", listed.get("levels").get(LOGGER).asText());

    assertEquals(400, send("PUT", "/logging?logger=" + LOGGER + "&level=loud").statusCode());
    assertEquals(405, send("GET", "/logging?logger=" + LOGGER + "&level=info").statusCode());
    assertEquals(Level.DEBUG, logger.getLevel(), "refused requests change nothing");

    assertEquals(200, send("PUT", "/logging?logger=" + LOGGER + "&level=inherit").statusCode());
    assertEquals(null, logger.getLevel());
  }

  private HttpResponse<String> send(String method, String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.address().getPort() + path))
            .method(method, HttpRequest.BodyPublishers.noBody())
            .timeout(Duration.ofSeconds(10))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
