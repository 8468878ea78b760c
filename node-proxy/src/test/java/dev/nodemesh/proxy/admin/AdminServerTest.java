package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every admin path is answered on the admin server's own threads, never on the caller's or a
 * data-plane event loop, so a slow scrape or dump cannot delay traffic: probes on its event loop
 * ({@code nodemesh-admin-io-*}), scrapes and dumps on its worker pool ({@code nodemesh-admin}).
 */
class AdminServerTest {
  @Test
  void everyPathRunsOnTheAdminThread() throws Exception {
    List<String> threads = Collections.synchronizedList(new ArrayList<>());
    try (AdminServer admin =
        AdminServer.start(
            new InetSocketAddress("127.0.0.1", 0),
            () -> {
              threads.add(Thread.currentThread().getName());
              return "";
            },
            () -> {
              threads.add(Thread.currentThread().getName());
              return null;
            },
            () -> {
              threads.add(Thread.currentThread().getName());
              return "{}";
            })) {
      HttpClient http = HttpClient.newHttpClient();
      for (String path : List.of("/metrics", "/ready", "/config_dump")) {
        HttpResponse<String> r =
            http.send(
                HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + admin.address().getPort() + path))
                    .timeout(Duration.ofSeconds(10))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), path);
      }
      assertEquals(3, threads.size(), threads.toString());
      assertEquals("nodemesh-admin", threads.get(0), "/metrics");
      assertTrue(threads.get(1).startsWith("nodemesh-admin-io-"), "/ready: " + threads.get(1));
      assertEquals("nodemesh-admin", threads.get(2), "/config_dump");
    }
  }

  /**
   * An upgrade runs two proxies with one --admin: the second binds the port beside the first
   * (SO_REUSEPORT), and every answer names the process that gave it.
   */
  @Test
  void aSecondServerSharesThePortAndAnswersNameTheProcess() throws Exception {
    try (AdminServer first =
            AdminServer.start(
                new InetSocketAddress("127.0.0.1", 0), () -> "", () -> null, () -> "{}");
        AdminServer second =
            AdminServer.start(
                new InetSocketAddress("127.0.0.1", first.address().getPort()),
                () -> "",
                () -> "not yet",
                () -> "{}")) {
      assertEquals(first.address().getPort(), second.address().getPort());
      HttpClient http = HttpClient.newHttpClient();
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(
                      URI.create("http://127.0.0.1:" + first.address().getPort() + "/healthz"))
                  .timeout(Duration.ofSeconds(10))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, r.statusCode());
      assertEquals(
          List.of(Long.toString(ProcessHandle.current().pid())),
          r.headers().allValues(AdminServer.PID_HEADER));
    }
  }
}
