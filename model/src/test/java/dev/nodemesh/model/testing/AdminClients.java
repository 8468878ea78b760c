package dev.nodemesh.model.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Clients that try to hold an admin server ({@code model.admin.AdminHttpServer}, run by the node
 * proxy and the control plane): slowloris connections that never finish their request head, and
 * more scrapes than the worker pool and its queue take. Shared by both daemons' slow-client tests,
 * which each start their own server on 127.0.0.1.
 */
public final class AdminClients {
  private AdminClients() {}

  /** A GET of {@code path} on 127.0.0.1:{@code port}, 20 s at most. */
  public static HttpResponse<String> get(HttpClient http, int port, String path)
      throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(Duration.ofSeconds(20))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /**
   * Opens {@code count} connections that each send a request head that never ends; the caller
   * closes them (also when the test fails).
   */
  public static List<Socket> slowloris(int port, int count, List<Socket> into) throws IOException {
    for (int i = 0; i < count; i++) {
      Socket s = new Socket("127.0.0.1", port);
      into.add(s);
      s.setSoTimeout(30_000);
      OutputStream out = s.getOutputStream();
      out.write("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
      out.flush();
    }
    return into;
  }

  /** Every one of {@code slow} was closed by the server (end of stream or reset, no answer). */
  public static void assertClosedByTheServer(List<Socket> slow) throws IOException {
    for (Socket s : slow) {
      InputStream in = s.getInputStream();
      int b;
      try {
        b = in.read();
      } catch (SocketTimeoutException e) {
        throw new AssertionError("a slow connection was never closed", e);
      } catch (SocketException reset) {
        b = -1;
      }
      assertEquals(-1, b);
    }
  }

  /** Starts {@code count} scrapes of {@code /metrics} at once (HTTP/1.1, 60 s each at most). */
  public static List<CompletableFuture<HttpResponse<String>>> scrapes(
      HttpClient http, int port, int count) {
    List<CompletableFuture<HttpResponse<String>>> held = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      held.add(
          http.sendAsync(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                  .timeout(Duration.ofSeconds(60))
                  .build(),
              HttpResponse.BodyHandlers.ofString()));
    }
    return held;
  }

  /** Waits (30 s at most) until at least one of {@code held} was answered 503; fails otherwise. */
  public static void assertOneRefused(List<CompletableFuture<HttpResponse<String>>> held)
      throws InterruptedException {
    long refused = 0;
    for (int i = 0; i < 600 && refused == 0; i++) {
      refused =
          held.stream()
              .filter(f -> f.isDone() && !f.isCompletedExceptionally())
              .filter(f -> f.join().statusCode() == 503)
              .count();
      if (refused == 0) {
        Thread.sleep(50);
      }
    }
    assertTrue(refused >= 1, "a scrape past the pool and its queue is refused with 503");
  }

  /** Each of {@code held} ends with 200 or 503 (within 60 s). */
  public static void assertEachAnswered(List<CompletableFuture<HttpResponse<String>>> held)
      throws Exception {
    for (var f : held) {
      int status = f.get(60, TimeUnit.SECONDS).statusCode();
      assertTrue(status == 200 || status == 503, "status " + status);
    }
  }
}
