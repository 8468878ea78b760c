package dev.nodemesh.control.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.admin.AdminHttpServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The control plane's admin under clients that would have held the JDK server it used to run (one
 * thread, no timeouts): slowloris connections that never finish their request head, and scrapes
 * that occupy every worker. The probes keep answering, a slow connection is closed at the request
 * deadline, and a scrape past the pool and its queue gets 503 at once.
 */
class HealthServerSlowClientTest {
  private static final int SLOW_CLIENTS = 3 * (AdminHttpServer.WORKERS + AdminHttpServer.QUEUE);

  private static HttpResponse<String> get(HttpClient http, int port, String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(Duration.ofSeconds(20))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void slowlorisDoesNotBlockProbesAndIsCutOffAtTheDeadline() throws Exception {
    List<Socket> slow = new ArrayList<>();
    try (HealthServer admin =
        HealthServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            () -> true,
            () -> "# metrics\n",
            Duration.ofMillis(500))) {
      int port = admin.address().getPort();
      for (int i = 0; i < SLOW_CLIENTS; i++) {
        Socket s = new Socket("127.0.0.1", port);
        s.setSoTimeout(30_000);
        OutputStream out = s.getOutputStream();
        // A request head that never ends.
        out.write(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        slow.add(s);
      }
      HttpClient http = HttpClient.newHttpClient();
      assertEquals(200, get(http, port, "/healthz").statusCode());
      assertEquals(200, get(http, port, "/ready").statusCode());
      assertEquals("# metrics\n", get(http, port, "/metrics").body());
      // Every slow connection is closed by the server (end of stream, no answer).
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
    } finally {
      for (Socket s : slow) {
        s.close();
      }
    }
  }

  @Test
  void busyWorkersAnswer503ButProbesStillAnswer() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch entered = new CountDownLatch(AdminHttpServer.WORKERS);
    try (HealthServer admin =
        HealthServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            () -> false,
            () -> {
              entered.countDown();
              try {
                release.await(60, TimeUnit.SECONDS);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
              return "";
            })) {
      int port = admin.address().getPort();
      HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
      // More scrapes than workers and queue together: the extra ones are refused at once.
      int extra = 5;
      List<CompletableFuture<HttpResponse<String>>> held = new ArrayList<>();
      for (int i = 0; i < AdminHttpServer.WORKERS + AdminHttpServer.QUEUE + extra; i++) {
        held.add(
            http.sendAsync(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                    .timeout(Duration.ofSeconds(60))
                    .build(),
                HttpResponse.BodyHandlers.ofString()));
      }
      assertTrue(entered.await(30, TimeUnit.SECONDS), "the workers are busy");
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
      // While every worker is held and the queue is full, the probes still answer.
      assertEquals(200, get(http, port, "/healthz").statusCode());
      assertEquals(503, get(http, port, "/ready").statusCode(), "not ready, and says so at once");
      release.countDown();
      for (var f : held) {
        int status = f.get(60, TimeUnit.SECONDS).statusCode();
        assertTrue(status == 200 || status == 503, "status " + status);
      }
    } finally {
      release.countDown();
    }
  }

  @Test
  void probesAreAnsweredOnTheAdminLoopAndScrapesOnItsWorkers() throws Exception {
    List<String> threads = new ArrayList<>();
    try (HealthServer admin =
        HealthServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            () -> {
              synchronized (threads) {
                threads.add(Thread.currentThread().getName());
              }
              return true;
            },
            () -> {
              synchronized (threads) {
                threads.add(Thread.currentThread().getName());
              }
              return "";
            })) {
      HttpClient http = HttpClient.newHttpClient();
      int port = admin.address().getPort();
      assertEquals(200, get(http, port, "/ready").statusCode());
      assertEquals(200, get(http, port, "/metrics").statusCode());
      assertEquals(404, get(http, port, "/nothing").statusCode());
    }
    assertTrue(threads.get(0).startsWith(HealthServer.THREAD + "-io-"), threads.toString());
    assertEquals(HealthServer.THREAD, threads.get(1));
  }
}
