package dev.nodemesh.control;

import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.ServicePort;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.Workload;
import java.util.Map;

/** Small protobuf resources for tests. */
public final class Fixtures {
  private Fixtures() {}

  public static Workload pod(String name, String node, String ip, Map<String, String> labels) {
    return Workload.newBuilder()
        .setUid("uid-" + name)
        .setName(name)
        .setNamespace("default")
        .setServiceAccount("default")
        .setNode(node)
        .addIps(ip)
        .putAllLabels(labels)
        .setTunnel(TunnelProtocol.HBONE)
        .setReady(true)
        .build();
  }

  public static Service service(String name, String vip, Map<String, String> selector) {
    return Service.newBuilder()
        .setName(name)
        .setNamespace("default")
        .addVips(vip)
        .addPorts(ServicePort.newBuilder().setPort(80).setTargetPort(8080).setAppProtocol("tcp"))
        .setSelector(Selector.newBuilder().putAllMatchLabels(selector))
        .build();
  }

  public static String key(String name) {
    return "default/" + name;
  }
}
