package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** Admin {@code /logging} over real HTTP against the Logback backend the tests run with. */
class LoggingEndpointTest {
  private static final String LOGGER = "dev.nodemesh.test.logging";

  private AdminServer admin;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final ListAppender<ILoggingEvent> captured = new ListAppender<>();
  private Logger logbackLogger;

  @BeforeEach
  void setUp() throws Exception {
    admin =
        AdminServer.start(
            new java.net.InetSocketAddress("127.0.0.1", 0), () -> "", () -> null, () -> "{}");
    logbackLogger = (Logger) LoggerFactory.getLogger(LOGGER);
    captured.start();
    logbackLogger.addAppender(captured);
  }

  @AfterEach
  void tearDown() {
    logbackLogger.detachAppender(captured);
    logbackLogger.setLevel(null);
    admin.close();
  }

  @Test
  void aLevelChangedOverHttpTakesEffectAtOnce() throws Exception {
    org.slf4j.Logger log = LoggerFactory.getLogger(LOGGER + ".child");
    log.debug("before");
    assertEquals(List.of(), messages(), "INFO by default: no debug lines");

    HttpResponse<String> set = send("POST", "/logging?logger=" + LOGGER + "&level=debug");
    assertEquals(200, set.statusCode(), set.body());
    assertEquals(LOGGER + " DEBUG\n", set.body());
    log.debug("after");
    assertEquals(List.of("after"), messages());

    JsonNode listed = new ObjectMapper().readTree(send("GET", "/logging").body());
    assertEquals("logback", listed.get("backend").asText());
    assertEquals("DEBUG", listed.get("levels").get(LOGGER).asText());
    assertEquals("INFO", listed.get("levels").get("ROOT").asText());

    assertEquals(200, send("PUT", "/logging?logger=" + LOGGER + "&level=inherit").statusCode());
    log.debug("inherited");
    assertEquals(List.of("after"), messages(), "back to ROOT's INFO");
  }

  @Test
  void badRequestsAreRefused() throws Exception {
    HttpResponse<String> bad = send("POST", "/logging?logger=" + LOGGER + "&level=loud");
    assertEquals(400, bad.statusCode(), bad.body());
    assertTrue(bad.body().contains("unknown level 'loud'"), bad.body());
    assertEquals(400, send("POST", "/logging?logger=bad%20name&level=debug").statusCode());
    assertEquals(400, send("POST", "/logging?logger=" + LOGGER).statusCode());
    assertEquals(400, send("POST", "/logging?level=inherit").statusCode()); // ROOT
    assertEquals(405, send("GET", "/logging?level=debug").statusCode());
    assertEquals(405, send("DELETE", "/logging").statusCode());
    assertEquals(null, logbackLogger.getLevel(), "nothing changed");
  }

  private List<String> messages() {
    return captured.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
  }

  private HttpResponse<String> send(String method, String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin.address().getPort() + path))
            .method(method, HttpRequest.BodyPublishers.noBody())
            .timeout(Duration.ofSeconds(10))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
