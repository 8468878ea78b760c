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
import java.net.Inet4Address;
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
    ServiceTraffic.Candidates c = candidates(snapshot.endpoints(service), port, vip, st);
    if (c.endpoints().isEmpty()) {
      return null;
    }
    int i = st.choose(c.endpoints(), c.keys(), client, hash, exclude, random);
    return new Route.ToService(service, port, c.endpoints().get(i), c.addresses().get(i));
  }

  /**
   * The usable endpoints of {@code all} for {@code port} and {@code vip}'s family: {@code st}'s
   * remembered ones while they were made from the same list (the same snapshot), port and family,
   * else resolved anew (an address and a key string per endpoint) and remembered.
   */
  private static ServiceTraffic.Candidates candidates(
      List<Workload> all, ServicePort port, InetAddress vip, ServiceTraffic st) {
    boolean v4 = vip instanceof Inet4Address;
    ServiceTraffic.Candidates c = st.candidates();
    if (c != null && c.from() == all && c.port() == port && c.ipv4() == v4) {
      return c;
    }
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
    c =
        new ServiceTraffic.Candidates(
            all, port, v4, List.copyOf(endpoints), List.copyOf(addresses), List.copyOf(keys));
    st.candidates(c);
    return c;
  }

  /**
   * The key of {@code t}'s endpoint: the remembered one when {@code t} was picked from {@code st}'s
   * current candidates (its address is one of theirs), else made from the address.
   */
  static String key(ServiceTraffic st, Route.ToService t) {
    ServiceTraffic.Candidates c = st.candidates();
    if (c != null) {
      List<InetSocketAddress> addresses = c.addresses();
      for (int i = 0; i < addresses.size(); i++) {
        if (addresses.get(i) == t.upstream()) {
          return c.keys().get(i);
        }
      }
    }
    return key(t.upstream());
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
