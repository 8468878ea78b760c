package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An upstream that ends its keep-alive connections the way nginx does after {@code
 * keepalive_requests}: the last response says {@code Connection: close}, then the server shuts its
 * side (FIN) and keeps reading and discarding for a while (lingering close) instead of closing. The
 * proxy must neither pool such a connection nor send the next request on it: found by the L7 bench
 * (wrk through nodemesh to nginx completed 0 requests in a run; curl hung on the 6th request of one
 * connection with {@code keepalive_requests 5}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class L7UpstreamCloseRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  static final String VIP = "10.97.0.30";
  static final int REQUESTS_PER_CONNECTION = 3;

  @TempDir Path tmp;
  private TestNode node;
  private LingeringServer server;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    node.addPod("web-1", 11);
    server = LingeringServer.start(node.pod("web-1").path(), 8080, REQUESTS_PER_CONNECTION);
    node.writeConfig("mesh.yaml", Mesh.routedWeb(VIP));
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    node.enrol("client");
    node.enrol("web-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(server, node, modes);
  }

  @Test
  void aConnectionTheServerEndsIsNeverReused() throws IOException {
    int n = 4 * REQUESTS_PER_CONNECTION + 1;
    // One curl, one client keep-alive connection, n requests; each must be answered (a request sent
    // on the lingering connection would wait for the 3 s limit and fail).
    String out =
        node.podExec(
            "client",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\n",
            "--max-time",
            "3",
            "http://" + VIP + "/r/[1-" + n + "]");
    assertEquals(n, out.lines().filter("200"::equals).count(), out);
    // The server saw every request once and opened a new connection for every third.
    assertEquals(n, server.requests.get(), out);
    assertTrue(
        server.connections.get() >= (n + REQUESTS_PER_CONNECTION - 1) / REQUESTS_PER_CONNECTION);
  }

  /**
   * Answers {@code perConnection} requests per connection (the last with {@code Connection:
   * close}), then half-closes and reads whatever else arrives for up to 10 s without answering.
   */
  static final class LingeringServer implements AutoCloseable {
    final AtomicInteger requests = new AtomicInteger();
    final AtomicInteger connections = new AtomicInteger();
    private final ServerSocket listener;
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private final int perConnection;

    private LingeringServer(ServerSocket listener, int perConnection) {
      this.listener = listener;
      this.perConnection = perConnection;
    }

    static LingeringServer start(Path netns, int port, int perConnection) throws IOException {
      ServerSocket s;
      try (NetworkNamespace ns = NetworkNamespace.open(netns);
          NetworkNamespace.Scope in = ns.enter()) {
        s = new ServerSocket();
        s.bind(new InetSocketAddress("0.0.0.0", port), 64);
      }
      LingeringServer server = new LingeringServer(s, perConnection);
      server.pool.execute(server::acceptLoop);
      return server;
    }

    private void acceptLoop() {
      while (!listener.isClosed()) {
        try {
          Socket c = listener.accept();
          connections.incrementAndGet();
          pool.execute(() -> serve(c));
        } catch (IOException e) {
          return; // closed
        }
      }
    }

    private void serve(Socket c) {
      try (c) {
        InputStream in = c.getInputStream();
        OutputStream out = c.getOutputStream();
        for (int i = 1; i <= perConnection; i++) {
          if (!readHead(in)) {
            return;
          }
          requests.incrementAndGet();
          boolean last = i == perConnection;
          byte[] body = ("ok " + i + "\n").getBytes(StandardCharsets.US_ASCII);
          String head =
              "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
                  + body.length
                  + "\r\n"
                  + (last ? "connection: close\r\n" : "")
                  + "\r\n";
          out.write(head.getBytes(StandardCharsets.US_ASCII));
          out.write(body);
          out.flush();
        }
        c.shutdownOutput();
        c.setSoTimeout(10_000);
        byte[] sink = new byte[4096];
        while (in.read(sink) >= 0) {
          // lingering: read and drop, never answer
        }
      } catch (SocketTimeoutException e) {
        // lingering over
      } catch (IOException e) {
        // client went away
      }
    }

    /** Reads one request head (no bodies in this test); false at end of stream. */
    private static boolean readHead(InputStream in) throws IOException {
      int matched = 0;
      byte[] end = {'\r', '\n', '\r', '\n'};
      int b;
      while ((b = in.read()) >= 0) {
        matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
        if (matched == 4) {
          return true;
        }
      }
      return false;
    }

    @Override
    public void close() throws IOException, InterruptedException {
      listener.close();
      pool.shutdownNow();
      pool.awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
