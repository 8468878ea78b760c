package dev.nodemesh.proxy.testing;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A small HTTP/1.1 server inside a pod namespace (the JDK's HttpServer, whose listening socket is
 * made while this thread is inside the namespace). Every answer is text: {@code pod=<name>}, {@code
 * uri=<request target>}, {@code method=}, then {@code h:<name>=<value>} per request header and
 * {@code body-bytes=<n>}. Paths: {@code /flaky...} answers 503 to every other request (the first
 * included); {@code /slow...} waits 2 s before answering.
 */
public final class HttpTestServer implements AutoCloseable {
  private final HttpServer server;
  private final ExecutorService executor;
  private final String pod;
  private final AtomicInteger flaky = new AtomicInteger();
  private final AtomicInteger requests = new AtomicInteger();
  private volatile boolean failing;

  private HttpTestServer(HttpServer server, ExecutorService executor, String pod) {
    this.server = server;
    this.executor = executor;
    this.pod = pod;
  }

  public static HttpTestServer start(Path netns, int port, String pod) throws IOException {
    HttpServer s;
    try (NetworkNamespace ns = NetworkNamespace.open(netns);
        NetworkNamespace.Scope in = ns.enter()) {
      s = HttpServer.create(new InetSocketAddress("0.0.0.0", port), 256);
    }
    ExecutorService ex = Executors.newFixedThreadPool(8);
    HttpTestServer t = new HttpTestServer(s, ex, pod);
    s.setExecutor(ex);
    s.createContext("/", t::handle);
    s.start();
    return t;
  }

  /** Requests answered so far (any path). */
  public int requests() {
    return requests.get();
  }

  /** While true, every request is answered 503 (an unhealthy endpoint). */
  public void failing(boolean fail) {
    failing = fail;
  }

  /** The Host header of every request so far, in arrival order. */
  public final java.util.Queue<String> hosts = new java.util.concurrent.ConcurrentLinkedQueue<>();

  /** The peer address the app saw for every request so far, in arrival order. */
  public final java.util.Queue<String> peers = new java.util.concurrent.ConcurrentLinkedQueue<>();

  /** Requests to /flaky so far. */
  public int flakyRequests() {
    return flaky.get();
  }

  private void handle(HttpExchange x) throws IOException {
    requests.incrementAndGet();
    String host = x.getRequestHeaders().getFirst("host");
    hosts.add(host == null ? "" : host);
    peers.add(x.getRemoteAddress().getAddress().getHostAddress());
    long bodyBytes;
    try (InputStream in = x.getRequestBody()) {
      bodyBytes = in.transferTo(OutputStream.nullOutputStream());
    }
    String path = x.getRequestURI().getPath();
    int status = failing ? 503 : 200;
    if (path.startsWith("/flaky") && flaky.getAndIncrement() % 2 == 0) {
      status = 503;
    }
    if (path.startsWith("/slow")) {
      try {
        Thread.sleep(2000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    StringBuilder b = new StringBuilder();
    b.append("pod=").append(pod).append('\n');
    b.append("uri=").append(x.getRequestURI()).append('\n');
    b.append("method=").append(x.getRequestMethod()).append('\n');
    Map<String, List<String>> sorted = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    sorted.putAll(x.getRequestHeaders());
    sorted.forEach(
        (k, v) ->
            b.append("h:")
                .append(k.toLowerCase(java.util.Locale.ROOT))
                .append('=')
                .append(String.join(",", v))
                .append('\n'));
    b.append("body-bytes=").append(bodyBytes).append('\n');
    byte[] out = b.toString().getBytes(StandardCharsets.UTF_8);
    x.getResponseHeaders().set("content-type", "text/plain");
    x.sendResponseHeaders(status, out.length);
    try (OutputStream os = x.getResponseBody()) {
      os.write(out);
    }
  }

  @Override
  public void close() throws InterruptedException {
    server.stop(0);
    executor.shutdownNow();
    executor.awaitTermination(5, TimeUnit.SECONDS);
  }
}
