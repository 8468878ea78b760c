package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.testing.AdminClients;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpClient;
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
 * Clients that hold the admin server must not stop it answering others: slowloris connections that
 * never finish their request head, and scrapes that occupy every worker. Probes ({@code /healthz},
 * {@code /ready}) keep answering; a slow connection is closed at the request deadline; past the
 * worker pool a scrape gets 503 at once rather than waiting.
 */
class AdminSlowClientTest {
  private static final int SLOW_CLIENTS = 3 * (AdminServer.WORKERS + AdminServer.QUEUE);

  @Test
  void slowlorisDoesNotBlockProbesAndIsCutOffAtTheDeadline() throws Exception {
    List<Socket> slow = new ArrayList<>();
    try (AdminServer admin =
        AdminServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            () -> "",
            () -> null,
            () -> "{}",
            InetAddress::isLoopbackAddress,
            Duration.ofMillis(500))) {
      int port = admin.address().getPort();
      AdminClients.slowloris(port, SLOW_CLIENTS, slow);
      HttpClient http = HttpClient.newHttpClient();
      assertEquals(200, AdminClients.get(http, port, "/healthz").statusCode());
      assertEquals(200, AdminClients.get(http, port, "/ready").statusCode());
      assertEquals(200, AdminClients.get(http, port, "/metrics").statusCode());
      // Every slow connection is closed by the server (end of stream, no answer).
      AdminClients.assertClosedByTheServer(slow);
    } finally {
      for (Socket s : slow) {
        s.close();
      }
    }
  }

  @Test
  void busyWorkersAnswer503ButProbesStillAnswer() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch entered = new CountDownLatch(AdminServer.WORKERS);
    try (AdminServer admin =
        AdminServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            () -> {
              entered.countDown();
              try {
                release.await(60, TimeUnit.SECONDS);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
              return "";
            },
            () -> null,
            () -> "{}")) {
      int port = admin.address().getPort();
      HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
      // More scrapes than workers and queue together: the extra ones are refused at once.
      int extra = 5;
      List<CompletableFuture<HttpResponse<String>>> held =
          AdminClients.scrapes(http, port, AdminServer.WORKERS + AdminServer.QUEUE + extra);
      assertTrue(entered.await(30, TimeUnit.SECONDS), "the workers are busy");
      AdminClients.assertOneRefused(held);
      // While every worker is held and the queue is full, the probes still answer.
      assertEquals(200, AdminClients.get(http, port, "/healthz").statusCode());
      assertEquals(200, AdminClients.get(http, port, "/ready").statusCode());
      release.countDown();
      AdminClients.assertEachAnswered(held);
    } finally {
      release.countDown();
    }
  }

  @Test
  void pipelinedRequestsAreAnsweredInOrder() throws Exception {
    try (AdminServer admin =
            AdminServer.start(
                new InetSocketAddress("127.0.0.1", 0), () -> "m 1\n", () -> null, () -> "{}");
        Socket s = new Socket("127.0.0.1", admin.address().getPort())) {
      s.setSoTimeout(30_000);
      // The scrape goes to the worker pool, the probe is answered on the loop: still in order.
      s.getOutputStream()
          .write(
              ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                      + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                  .getBytes(StandardCharsets.US_ASCII));
      String all = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
      int metrics = all.indexOf("m 1\n");
      int ok = all.indexOf("ok\n");
      assertTrue(metrics > 0 && ok > metrics, all);
    }
  }
}
