package dev.nodemesh.proxy.upstream;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.agent.EnrolledPod;
import io.netty.channel.Channel;
import io.netty.util.concurrent.Future;
import java.io.IOException;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;

/**
 * The data plane's ways to its upstreams, one instance per data plane: the path decision with this
 * node's facts, the direct dialer, the HBONE dialer when the proxy holds certificates, and the HTTP
 * connection pools. As a {@link Dialer} it carries out any path with the dialer that path needs.
 */
public final class Upstreams implements Dialer {
  private final PathDecider paths;
  private final PathDecider.EnrolledPods pods;
  private final DirectDialer direct;
  private final @Nullable HboneDialer hbone;
  private final UpstreamPools http;

  /**
   * @param nodeName this node's name, which HBONE compares a destination's node against
   * @param hbone null when the proxy has no identity: every destination is then reached directly
   */
  public Upstreams(
      String nodeName,
      String trustDomain,
      PathDecider.EnrolledPods pods,
      DirectDialer direct,
      @Nullable HboneDialer hbone) {
    this.paths = new PathDecider(hbone == null ? null : nodeName, trustDomain);
    this.pods = pods;
    this.direct = direct;
    this.hbone = hbone;
    this.http = new UpstreamPools(this);
  }

  /**
   * How to reach {@code target} from {@code source}: {@link PathDecider#decide} over the enrolled
   * pods as they are now.
   *
   * @param endpoint the mesh workload {@code target} belongs to, or null for passthrough
   */
  public UpstreamPath pathTo(
      ConfigSnapshot snapshot,
      EnrolledPod source,
      @Nullable Workload endpoint,
      InetSocketAddress target) {
    return paths.decide(snapshot, pods, source, endpoint, target);
  }

  public DirectDialer direct() {
    return direct;
  }

  public @Nullable HboneDialer hbone() {
    return hbone;
  }

  /** Pooled HTTP connections (and tunnelled streams) for the L7 path and mirroring. */
  public UpstreamPools http() {
    return http;
  }

  @Override
  public Future<Channel> dial(Channel downstream, UpstreamPath path) {
    // Java 17: no switch over the sealed type; every permitted type is named here.
    if (path instanceof UpstreamPath.Direct || path instanceof UpstreamPath.SameNode) {
      return direct.dial(downstream, path);
    }
    if (path instanceof UpstreamPath.Hbone h) {
      return hbone != null
          ? hbone.dial(downstream, h)
          : downstream.eventLoop().newFailedFuture(new IllegalStateException("no tunnel: " + h));
    }
    return downstream.eventLoop().newFailedFuture(noIdentity((UpstreamPath.NoIdentity) path));
  }

  /** Why a {@link UpstreamPath.NoIdentity} path is refused. */
  public static IOException noIdentity(UpstreamPath.NoIdentity path) {
    return new IOException("tunnel from " + path.source() + ": the pod is not in the config");
  }
}
