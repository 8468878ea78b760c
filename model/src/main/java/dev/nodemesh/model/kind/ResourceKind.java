package dev.nodemesh.model.kind;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Message;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.function.BiPredicate;
import org.jspecify.annotations.Nullable;

/**
 * One kind of config resource as the xDS wire and the snapshot see it: its name, its protobuf type
 * and type URL, how a proto decodes (and is validated) into the record, whether a resource belongs
 * in a given node's snapshot, and the order the snapshot keeps. The xDS client and the control
 * plane's store iterate over {@link ResourceKinds#ALL} instead of spelling out each kind.
 *
 * <p>Limits: the YAML side (Kubernetes kinds and API versions, {@code ResourceParser}) and the
 * encoder ({@code ProtoEncoder}) are not reached through the descriptor yet.
 *
 * @param <P> the protobuf message on the wire
 * @param <R> the validated record in the snapshot
 */
public final class ResourceKind<P extends Message, R> {
  /** Decodes and validates one resource; null after recording the errors in the decoder. */
  @FunctionalInterface
  public interface Decode<P, R> {
    @Nullable R decode(ResourceDecoder decoder, String resourceName, P proto);
  }

  private static final String TYPE_URL_PREFIX = "type.googleapis.com/";

  private final String name;
  private final Class<P> protoType;
  private final String typeUrl;
  private final Decode<P, R> decode;
  private final BiPredicate<P, String> servesNode;
  private final @Nullable Comparator<R> order;

  ResourceKind(
      String name,
      Class<P> protoType,
      Descriptor descriptor,
      Decode<P, R> decode,
      BiPredicate<P, String> servesNode,
      @Nullable Comparator<R> order) {
    this.name = name;
    this.protoType = protoType;
    this.typeUrl = TYPE_URL_PREFIX + descriptor.getFullName();
    this.decode = decode;
    this.servesNode = servesNode;
    this.order = order;
  }

  /** The kind's name, as the protobuf message is called ("Workload", "HttpRoute"). */
  public String name() {
    return name;
  }

  public Class<P> protoType() {
    return protoType;
  }

  /** The xDS type URL: {@code type.googleapis.com/} and the message's full name. */
  public String typeUrl() {
    return typeUrl;
  }

  public @Nullable R decode(ResourceDecoder decoder, String resourceName, P proto) {
    return decode.decode(decoder, resourceName, proto);
  }

  /**
   * Whether the resource goes into the snapshot of node {@code nodeName}; true for every kind but
   * workloads, of which one that is not ready is left out unless it runs on that node (inbound
   * traffic still needs to find it).
   */
  public boolean servesNode(P proto, String nodeName) {
    return servesNode.test(proto, nodeName);
  }

  /** The values in the order the snapshot is built from (as given when the snapshot sorts). */
  public List<R> ordered(Collection<R> values) {
    List<R> out = new ArrayList<>(values);
    if (order != null) {
      out.sort(order);
    }
    return out;
  }

  @Override
  public String toString() {
    return name;
  }
}
