package dev.nodemesh.control.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.admin.AdminHttpServer;
import dev.nodemesh.model.testing.AdminClients;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
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
      AdminClients.slowloris(port, SLOW_CLIENTS, slow);
      HttpClient http = HttpClient.newHttpClient();
      assertEquals(200, AdminClients.get(http, port, "/healthz").statusCode());
      assertEquals(200, AdminClients.get(http, port, "/ready").statusCode());
      assertEquals("# metrics\n", AdminClients.get(http, port, "/metrics").body());
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
      List<CompletableFuture<HttpResponse<String>>> held =
          AdminClients.scrapes(http, port, AdminHttpServer.WORKERS + AdminHttpServer.QUEUE + extra);
      assertTrue(entered.await(30, TimeUnit.SECONDS), "the workers are busy");
      AdminClients.assertOneRefused(held);
      // While every worker is held and the queue is full, the probes still answer.
      assertEquals(200, AdminClients.get(http, port, "/healthz").statusCode());
      assertEquals(
          503,
          AdminClients.get(http, port, "/ready").statusCode(),
          "not ready, and says so at once");
      release.countDown();
      AdminClients.assertEachAnswered(held);
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
      assertEquals(200, AdminClients.get(http, port, "/ready").statusCode());
      assertEquals(200, AdminClients.get(http, port, "/metrics").statusCode());
      assertEquals(404, AdminClients.get(http, port, "/nothing").statusCode());
    }
    assertTrue(threads.get(0).startsWith(HealthServer.THREAD + "-io-"), threads.toString());
    assertEquals(HealthServer.THREAD, threads.get(1));
  }
}
