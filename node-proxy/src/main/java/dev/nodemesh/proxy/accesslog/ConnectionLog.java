package dev.nodemesh.proxy.accesslog;

import dev.nodemesh.proxy.metrics.TrafficLabels;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.EnumSet;
import java.util.StringJoiner;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * The access-log record of one connection while it is open: created when the connection is accepted
 * (only for sampled connections, see {@link AccessLog#begin}), filled by the paths it passes
 * through, and handed to the writer once by {@link #finish}. Confined to the connection's event
 * loop, so it is a plain mutable object; the JSON is made on the writer thread.
 */
public final class ConnectionLog {
  private final AccessLog log;
  private final Instant start;
  private final long startNanos;
  private TrafficLabels labels;
  private @Nullable InetSocketAddress originalDestination;
  private @Nullable InetSocketAddress upstream;
  private long upstreamConnectNanos = -1;
  private long bytesSent;
  private long bytesReceived;
  private final EnumSet<ResponseFlag> flags = EnumSet.noneOf(ResponseFlag.class);
  private @Nullable String sourcePrincipal;
  private @Nullable String destinationPrincipal;
  private @Nullable String authzDecision;
  private @Nullable String authzPolicy;
  private @Nullable String httpMethod;
  private @Nullable String httpPath;
  private @Nullable Integer httpStatus;
  private @Nullable Integer grpcStatus;
  private boolean finished;

  ConnectionLog(AccessLog log, Instant start, long startNanos, TrafficLabels labels) {
    this.log = log;
    this.start = start;
    this.startNanos = startNanos;
    this.labels = labels;
  }

  public ConnectionLog labels(TrafficLabels l) {
    this.labels = l;
    return this;
  }

  public ConnectionLog originalDestination(InetSocketAddress a) {
    this.originalDestination = a;
    return this;
  }

  public ConnectionLog upstream(InetSocketAddress a) {
    this.upstream = a;
    return this;
  }

  /** The upstream connected {@code nanos} after the relay started. */
  public ConnectionLog upstreamConnected(long nanos) {
    this.upstreamConnectNanos = nanos;
    return this;
  }

  public ConnectionLog bytes(long sent, long received) {
    this.bytesSent = sent;
    this.bytesReceived = received;
    return this;
  }

  public ConnectionLog flag(ResponseFlag f) {
    flags.add(f);
    return this;
  }

  public ConnectionLog sourcePrincipal(String p) {
    this.sourcePrincipal = p;
    return this;
  }

  public ConnectionLog destinationPrincipal(String p) {
    this.destinationPrincipal = p;
    return this;
  }

  /** The authorization decision ("allow"/"deny") and the policy that made it, if any. */
  public ConnectionLog authz(String decision, @Nullable String policy) {
    this.authzDecision = decision;
    this.authzPolicy = policy;
    return this;
  }

  public ConnectionLog http(String method, String path, int status) {
    this.httpMethod = method;
    this.httpPath = path;
    this.httpStatus = status;
    return this;
  }

  /** The gRPC status of the request (from its trailers, or the proxy's own answer). */
  public ConnectionLog grpc(int status) {
    this.grpcStatus = status;
    return this;
  }

  /** The connection has ended: queue its line (once; later calls do nothing). */
  public void finish() {
    if (finished) {
      return;
    }
    finished = true;
    log.write(entry(log.nanoClock().getAsLong()));
  }

  AccessLogEntry entry(long nowNanos) {
    StringJoiner f = new StringJoiner(",");
    flags.forEach(x -> f.add(x.name()));
    return new AccessLogEntry(
        start.toString(),
        TimeUnit.NANOSECONDS.toMicros(nowNanos - startNanos),
        labels.reporter(),
        log.node(),
        labels.sourceWorkload(),
        labels.sourceNamespace(),
        labels.destinationWorkload(),
        labels.destinationNamespace(),
        labels.destinationService(),
        address(originalDestination),
        address(upstream),
        upstreamConnectNanos < 0 ? null : TimeUnit.NANOSECONDS.toMicros(upstreamConnectNanos),
        bytesSent,
        bytesReceived,
        flags.isEmpty() ? "-" : f.toString(),
        sourcePrincipal,
        destinationPrincipal,
        authzDecision,
        authzPolicy,
        httpMethod,
        httpPath,
        httpStatus,
        grpcStatus);
  }

  private static @Nullable String address(@Nullable InetSocketAddress a) {
    if (a == null) {
      return null;
    }
    String host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
    return host.indexOf(':') >= 0 ? "[" + host + "]:" + a.getPort() : host + ":" + a.getPort();
  }
}
