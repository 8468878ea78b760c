package dev.nodemesh.proxy.state;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.proto.ResourceDecoder;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One accepted config as the control plane sent it: the xDS resources of every kind (by type URL),
 * the snapshot version they made, the node they were filtered for and when they were accepted.
 * Saved as the wire resources rather than the records, so loading runs them through the same
 * decoder and validation as an xDS response: a saved resource that today's rules reject makes the
 * whole file unusable instead of half-applied.
 *
 * @param resources every resource held, per kind type URL; a kind with none may be absent
 */
public record SavedConfig(
    String nodeName, long version, Instant acceptedAt, Map<String, List<Resource>> resources) {

  public SavedConfig {
    resources = Map.copyOf(resources);
  }

  /**
   * Decodes and validates every resource and builds the snapshot, as the xDS client does for a
   * response (a workload not ready on another node is left out, as there).
   *
   * @throws IllegalArgumentException naming every resource that does not decode, an unknown kind,
   *     or the cross-resource rule the whole breaks
   */
  public ConfigSnapshot toSnapshot() {
    List<String> errors = new ArrayList<>();
    for (String typeUrl : resources.keySet()) {
      if (ResourceKinds.ofTypeUrl(typeUrl) == null) {
        errors.add("unknown resource type " + typeUrl);
      }
    }
    ResourceDecoder decoder = new ResourceDecoder(errors);
    Map<ResourceKind<?, ?>, List<?>> values = new HashMap<>();
    for (ResourceKind<?, ?> kind : ResourceKinds.ALL) {
      values.put(kind, decode(kind, decoder, errors));
    }
    if (!errors.isEmpty()) {
      throw new IllegalArgumentException(String.join("; ", errors));
    }
    return ResourceKinds.snapshot(
        version,
        new ResourceKinds.Values() {
          @Override
          @SuppressWarnings("unchecked") // values of kind R are R (see decode)
          public <R> List<R> of(ResourceKind<?, R> kind) {
            return kind.ordered((List<R>) values.getOrDefault(kind, List.of()));
          }
        });
  }

  private <P extends Message, R> List<R> decode(
      ResourceKind<P, R> kind, ResourceDecoder decoder, List<String> errors) {
    List<R> out = new ArrayList<>();
    for (Resource res : resources.getOrDefault(kind.typeUrl(), List.of())) {
      P proto;
      try {
        proto = res.getResource().unpack(kind.protoType());
      } catch (InvalidProtocolBufferException e) {
        errors.add(res.getName() + ": not a " + kind.protoType().getSimpleName());
        continue;
      }
      R value = kind.decode(decoder, res.getName(), proto);
      if (value != null && kind.servesNode(proto, nodeName)) {
        out.add(value);
      }
    }
    return out;
  }
}
