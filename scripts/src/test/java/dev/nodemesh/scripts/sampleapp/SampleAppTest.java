package dev.nodemesh.scripts.sampleapp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class SampleAppTest {
  private SampleApp app;
  private final HttpClient http =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();

  @BeforeEach
  void start() throws Exception {
    app = SampleApp.start("echo-7", "shop", InetAddress.getLoopbackAddress(), 0, 0);
  }

  @AfterEach
  void stop() throws Exception {
    app.close();
  }

  private HttpResponse<byte[]> get(String path) throws Exception {
    HttpRequest req =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + app.httpPort() + path))
            .timeout(Duration.ofSeconds(5))
            .build();
    return http.send(req, HttpResponse.BodyHandlers.ofByteArray());
  }

  @Test
  void httpEchoSaysWhichPodServedWhatPathForWhom() throws Exception {
    for (int i = 0; i < 3; i++) { // several requests, over the client's kept-alive connection
      HttpResponse<byte[]> r = get("/hello/" + i);
      assertEquals(200, r.statusCode());
      assertEquals("echo-7", r.headers().firstValue("x-served-by").orElse(""));
      String body = new String(r.body(), StandardCharsets.UTF_8);
      assertTrue(
          body.matches("pod=echo-7 ns=shop path=/hello/" + i + " from=127\\.0\\.0\\.1:\\d+\n"),
          body);
    }
  }

  @Test
  void bytesEndpointReturnsExactlyN() throws Exception {
    assertEquals(1024, get("/bytes/1024").body().length);
    assertEquals(0, get("/bytes/0").body().length);
    assertEquals(400, get("/bytes/lots").statusCode());
  }

  @Test
  void tcpEchoesUntilHalfCloseThenCloses() throws Exception {
    byte[] sent = new byte[200_000]; // more than socket buffers: echo must keep up while we write
    for (int i = 0; i < sent.length; i++) {
      sent[i] = (byte) i;
    }
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), app.tcpPort()), 5000);
      s.setSoTimeout(5000);
      Thread writer =
          new Thread(
              () -> {
                try {
                  s.getOutputStream().write(sent);
                  s.shutdownOutput();
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      writer.start();
      InputStream in = s.getInputStream();
      byte[] got = in.readAllBytes(); // returns at the server's FIN, after our half-close
      writer.join(5000);
      assertArrayEquals(sent, got);
    }
  }
}
