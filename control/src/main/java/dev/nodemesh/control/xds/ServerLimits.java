package dev.nodemesh.control.xds;

import io.grpc.netty.NettyServerBuilder;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The limits of the control plane's gRPC server (xDS and the CA on one port), which every node
 * proxy of the cluster, and anything else that can reach the port, talks to.
 *
 * <ul>
 *   <li>{@link #MAX_CALLS_PER_CONNECTION}: a node proxy holds one ADS stream and makes a CSR call
 *       now and then; HTTP/2 {@code MAX_CONCURRENT_STREAMS} tells a client to queue past this.
 *   <li>Rapid reset (CVE-2023-44487): at most {@link #MAX_RST_FRAMES} RST_STREAM frames in {@link
 *       #RST_WINDOW_SECONDS} per connection, then grpc-java sends GOAWAY and closes it.
 *   <li>A TLS handshake must finish in {@link #HANDSHAKE_TIMEOUT_SECONDS}.
 *   <li>Call handlers run on a fixed pool of {@link #HANDLER_THREADS} threads, not one thread per
 *       busy call: a flood of calls queues (each connection's calls bounded above) instead of
 *       growing threads. A task is never refused, since grpc has no good answer to a refused one.
 * </ul>
 */
public final class ServerLimits {
  public static final int MAX_CALLS_PER_CONNECTION = 16;
  public static final int MAX_RST_FRAMES = 200;
  public static final int RST_WINDOW_SECONDS = 10;
  public static final int HANDSHAKE_TIMEOUT_SECONDS = 10;
  public static final int HANDLER_THREADS = 4;

  private ServerLimits() {}

  /** The pool for call handlers; the caller shuts it down after the server. */
  public static ExecutorService handlerExecutor() {
    AtomicInteger n = new AtomicInteger();
    ThreadPoolExecutor pool =
        new ThreadPoolExecutor(
            HANDLER_THREADS,
            HANDLER_THREADS,
            30,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            r -> {
              Thread t = new Thread(r, "nodemesh-grpc-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    pool.allowCoreThreadTimeOut(true);
    return pool;
  }

  /** Applies the limits and {@code executor} to {@code builder}. */
  public static NettyServerBuilder apply(NettyServerBuilder builder, ExecutorService executor) {
    return builder
        .executor(executor)
        .maxConcurrentCallsPerConnection(MAX_CALLS_PER_CONNECTION)
        .maxRstFramesPerWindow(MAX_RST_FRAMES, RST_WINDOW_SECONDS)
        .handshakeTimeout(HANDSHAKE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
  }
}
