package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.nodemesh.model.admin.LoggingEndpoint;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
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
        AdminServer.start(new InetSocketAddress("127.0.0.1", 0), () -> "", () -> null, () -> "{}");
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

  @Test
  void aChangeFromAPeerThatIsNotLoopbackIsRefusedWithTheReason() throws Exception {
    // The real check is InetAddress::isLoopbackAddress; a test cannot easily connect from a
    // non-loopback address without a namespace (LoggingEndpointRootTest does), so refuse all here.
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 8);
    server.createContext("/logging", new LoggingEndpoint(peer -> false));
    server.start();
    try {
      int port = server.getAddress().getPort();
      HttpResponse<String> refused =
          send(port, "POST", "/logging?logger=" + LOGGER + "&level=debug");
      assertEquals(403, refused.statusCode(), refused.body());
      assertTrue(refused.body().contains("only from loopback"), refused.body());
      assertTrue(refused.body().contains("came from 127.0.0.1"), refused.body());
      assertEquals(403, send(port, "PUT", "/logging?level=loud").statusCode(), "before validation");
      assertEquals(null, logbackLogger.getLevel(), "nothing changed");
      assertEquals(200, send(port, "GET", "/logging").statusCode(), "reading stays open");
    } finally {
      server.stop(0);
    }
  }

  @Test
  void anyAddressInTheLoopbackRangeMayChangeLevels() throws Exception {
    // 127.0.0.2 is a different peer address than the listener's, still loopback.
    try (Socket s = new Socket()) {
      s.bind(new InetSocketAddress("127.0.0.2", 0));
      s.connect(admin.address(), 5_000);
      s.getOutputStream()
          .write(
              ("POST /logging?logger="
                      + LOGGER
                      + "&level=debug HTTP/1.1\r\nHost: x\r\n"
                      + "Content-Length: 0\r\nConnection: close\r\n\r\n")
                  .getBytes(StandardCharsets.US_ASCII));
      String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
      assertTrue(response.startsWith("HTTP/1.1 200"), response);
    }
    assertEquals(Level.DEBUG, logbackLogger.getLevel());
  }

  private List<String> messages() {
    return captured.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
  }

  private HttpResponse<String> send(String method, String path) throws Exception {
    return send(admin.address().getPort(), method, path);
  }

  private HttpResponse<String> send(int port, String method, String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .method(method, HttpRequest.BodyPublishers.noBody())
            .timeout(Duration.ofSeconds(10))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
