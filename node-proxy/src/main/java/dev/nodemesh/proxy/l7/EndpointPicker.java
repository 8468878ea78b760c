package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.l7.resilience.RingHash;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import dev.nodemesh.proxy.outbound.Route;
import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;
import org.jspecify.annotations.Nullable;

/**
 * The balance layer: the one endpoint pick of a try, by the backend Service's TrafficPolicy ({@link
 * ServiceTraffic#choose}: ejections, locality, the algorithm) among the endpoints with an IP of the
 * dialled VIP's family and a resolvable target port. The router only chose the backend Service
 * ({@link HttpRouter.ToBackend}); nothing else picks an endpoint.
 */
final class EndpointPicker {
  private EndpointPicker() {}

  /**
   * The endpoint for one try, or null when the backend has no usable endpoint.
   *
   * @param client the calling workload (locality), null when not in config
   * @param hash RING_HASH's key for this request ({@link #hash})
   * @param exclude the key ({@link #key}) of the endpoint a failed try went to, null on a first try
   */
  static Route.@Nullable ToService pick(
      ConfigSnapshot snapshot,
      MeshService service,
      ServicePort port,
      InetAddress vip,
      ServiceTraffic st,
      @Nullable Workload client,
      long hash,
      @Nullable String exclude,
      RandomGenerator random) {
    List<Workload> all = snapshot.endpoints(service);
    List<Workload> endpoints = new ArrayList<>(all.size());
    List<String> keys = new ArrayList<>(all.size());
    List<InetSocketAddress> addresses = new ArrayList<>(all.size());
    for (Workload w : all) {
      InetAddress ip = w.ipLike(vip);
      int p = port.targetPortOn(w);
      if (ip != null && p != 0) {
        InetSocketAddress a = new InetSocketAddress(ip, p);
        endpoints.add(w);
        addresses.add(a);
        keys.add(key(a));
      }
    }
    if (endpoints.isEmpty()) {
      return null;
    }
    int i = st.choose(endpoints, keys, client, hash, exclude, random);
    return new Route.ToService(service, port, endpoints.get(i), addresses.get(i));
  }

  /** An endpoint's key in the Service's statistics: IP:port. */
  static String key(InetSocketAddress a) {
    return a.getAddress().getHostAddress() + ":" + a.getPort();
  }

  /** RING_HASH's key: the configured header when present, else the client's IP; 0 otherwise. */
  static long hash(TrafficPolicy policy, HttpHeaders headers, String clientIp) {
    TrafficPolicy.LoadBalancer lb = policy.loadBalancer();
    if (lb.algorithm() != TrafficPolicy.Algorithm.RING_HASH) {
      return 0;
    }
    String header = lb.hashHeader();
    String value = header == null ? null : headers.get(header);
    return RingHash.hash(value != null ? "h:" + value : "ip:" + clientIp);
  }
}
