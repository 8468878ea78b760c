package dev.nodemesh.scripts.sampleapp;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import org.jspecify.annotations.Nullable;

/**
 * The app a pod runs in local mode and benchmarks: an HTTP/1.1 keep-alive echo and a plain TCP
 * echo. Plain JDK on purpose (no Netty) so it behaves like a user's app, not like the proxy.
 *
 * <p>Limits: a fixed pool of 4 HTTP threads and one thread per TCP connection; meant for tests and
 * demos, not for thousands of connections.
 */
public final class SampleApp implements AutoCloseable {
  private static final int HTTP_THREADS = 4;
  private static final int MAX_BYTES = 64 * 1024 * 1024;

  private final String podName;
  private final String namespace;
  private final @Nullable HttpServer http;
  private final @Nullable ExecutorService httpPool;
  private final @Nullable ServerSocket tcp;

  private SampleApp(
      String podName,
      String namespace,
      @Nullable HttpServer http,
      @Nullable ExecutorService httpPool,
      @Nullable ServerSocket tcp) {
    this.podName = podName;
    this.namespace = namespace;
    this.http = http;
    this.httpPool = httpPool;
    this.tcp = tcp;
  }

  /**
   * Starts the listeners that have a port (0 picks an ephemeral port; negative means off).
   *
   * @param bind address to listen on: 0.0.0.0 in a pod, 127.0.0.1 in tests
   */
  public static SampleApp start(
      String podName, String namespace, InetAddress bind, int httpPort, int tcpPort)
      throws IOException {
    HttpServer http = null;
    ExecutorService pool = null;
    ServerSocket tcp = null;
    try {
      if (httpPort >= 0) {
        http = HttpServer.create(new InetSocketAddress(bind, httpPort), 128);
        pool = Executors.newFixedThreadPool(HTTP_THREADS, daemonThreads("http"));
        http.setExecutor(pool);
      }
      if (tcpPort >= 0) {
        tcp = new ServerSocket(tcpPort, 128, bind);
      }
    } catch (IOException | RuntimeException e) {
      if (http != null) {
        http.stop(0);
      }
      if (pool != null) {
        pool.shutdownNow();
      }
      throw e;
    }
    SampleApp app = new SampleApp(podName, namespace, http, pool, tcp);
    if (http != null) {
      http.createContext("/", app::handle);
      http.start();
    }
    if (tcp != null) {
      ServerSocket listener = tcp;
      Thread acceptor = new Thread(() -> acceptLoop(listener), "tcp-accept");
      acceptor.setDaemon(true);
      acceptor.start();
    }
    return app;
  }

  /** The bound HTTP port, or -1 when HTTP is off. */
  public int httpPort() {
    return http == null ? -1 : http.getAddress().getPort();
  }

  /** The bound TCP echo port, or -1 when TCP is off. */
  public int tcpPort() {
    return tcp == null ? -1 : tcp.getLocalPort();
  }

  private void handle(HttpExchange exchange) throws IOException {
    // HttpExchange is AutoCloseable only from JDK 18; this code targets 17.
    try {
      // Drain the request body so the connection stays usable for the next request.
      exchange.getRequestBody().transferTo(OutputStream.nullOutputStream());
      String path = exchange.getRequestURI().getRawPath();
      if (path.startsWith("/bytes/")) {
        byte @Nullable [] body = bytesBody(path.substring("/bytes/".length()));
        if (body == null) {
          reply(exchange, 400, "bad byte count\n".getBytes(StandardCharsets.UTF_8));
        } else {
          reply(exchange, 200, body);
        }
        return;
      }
      InetSocketAddress from = exchange.getRemoteAddress();
      String text =
          "pod=%s ns=%s path=%s from=%s:%d\n"
              .formatted(
                  podName, namespace, path, from.getAddress().getHostAddress(), from.getPort());
      reply(exchange, 200, text.getBytes(StandardCharsets.UTF_8));
    } finally {
      exchange.close();
    }
  }

  private void reply(HttpExchange exchange, int status, byte[] body) throws IOException {
    exchange.getResponseHeaders().set("x-served-by", podName);
    exchange.getResponseHeaders().set("content-type", "text/plain");
    // -1 tells HttpServer "no body" (0 would mean chunked).
    exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(body);
    }
  }

  private static byte @Nullable [] bytesBody(String count) {
    int n;
    try {
      n = Integer.parseInt(count);
    } catch (NumberFormatException e) {
      return null;
    }
    if (n < 0 || n > MAX_BYTES) {
      return null;
    }
    byte[] body = new byte[n];
    Arrays.fill(body, (byte) 'x');
    return body;
  }

  private static void acceptLoop(ServerSocket listener) {
    while (!listener.isClosed()) {
      try {
        Socket socket = listener.accept();
        Thread t = new Thread(() -> echo(socket), "tcp-echo");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        if (!listener.isClosed()) {
          System.err.println("sample-app: accept failed: " + e);
        }
      }
    }
  }

  // Echo until the client half-closes, then close our side: a client that shut down its output
  // still reads everything echoed before our FIN.
  private static void echo(Socket socket) {
    try (socket) {
      InputStream in = socket.getInputStream();
      OutputStream out = socket.getOutputStream();
      byte[] buf = new byte[16 * 1024];
      int n;
      while ((n = in.read(buf)) >= 0) {
        out.write(buf, 0, n);
        out.flush();
      }
      socket.shutdownOutput();
    } catch (IOException e) {
      // A reset by the peer ends this connection only.
    }
  }

  @Override
  public void close() throws IOException {
    if (http != null) {
      http.stop(0);
    }
    if (httpPool != null) {
      httpPool.shutdownNow();
    }
    if (tcp != null) {
      tcp.close();
    }
  }

  private static ThreadFactory daemonThreads(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  /**
   * {@code SampleApp --name POD [--namespace NS] [--http PORT] [--tcp PORT] [--bind ADDR]}. Plain
   * argument parsing keeps the pod's JVM free of the launcher's libraries.
   */
  public static void main(String[] args) throws Exception {
    String name = "sample-app";
    String namespace = "default";
    int httpPort = -1;
    int tcpPort = -1;
    String bind = "0.0.0.0";
    for (int i = 0; i < args.length; i++) {
      String flag = args[i];
      if (flag.equals("--help") || flag.equals("-h")) {
        System.out.println(
            "usage: SampleApp --name POD [--namespace NS] [--http PORT] [--tcp PORT]"
                + " [--bind ADDR]");
        return;
      }
      if (i + 1 >= args.length) {
        throw usage("missing value for " + flag);
      }
      String value = args[++i];
      switch (flag) {
        case "--name" -> name = value;
        case "--namespace" -> namespace = value;
        case "--http" -> httpPort = port(value);
        case "--tcp" -> tcpPort = port(value);
        case "--bind" -> bind = value;
        default -> throw usage("unknown flag " + flag);
      }
    }
    if (httpPort < 0 && tcpPort < 0) {
      throw usage("give --http and/or --tcp");
    }
    SampleApp app = start(name, namespace, InetAddress.getByName(bind), httpPort, tcpPort);
    System.out.printf(
        "sample-app: pod=%s ns=%s http=%d tcp=%d%n",
        name, namespace, app.httpPort(), app.tcpPort());
    Runtime.getRuntime().addShutdownHook(new Thread(() -> closeQuietly(app)));
    Thread.currentThread().join();
  }

  private static int port(String value) {
    try {
      int p = Integer.parseInt(value);
      if (p >= 0 && p <= 65535) {
        return p;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw usage("bad port " + value);
  }

  private static RuntimeException usage(String message) {
    System.err.println("sample-app: " + message);
    System.exit(2);
    return new IllegalStateException(message);
  }

  private static void closeQuietly(SampleApp app) {
    try {
      app.close();
    } catch (IOException e) {
      // exiting anyway
    }
  }
}
