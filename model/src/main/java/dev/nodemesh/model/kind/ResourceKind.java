package dev.nodemesh.model.kind;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Message;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.proto.ProtoFields;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.function.BiPredicate;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * One kind of config resource as the xDS wire and the snapshot see it: its name, its protobuf type
 * and type URL, its record type (which keys its slot in the snapshot, {@link ConfigSnapshot#all}),
 * how a record is resolved against the input-only records (ReferenceGrants for routes) and encoded,
 * how a proto decodes (and is validated) back into the record, whether a resource belongs in a
 * given node's snapshot, and the order the snapshot keeps. Each kind is built in its own kind file
 * ({@code WorkloadKind}, {@code TrafficPolicyKind}...), which holds its encode and decode beside
 * it; the xDS client, the loader, the control plane's store and its sources iterate over {@link
 * ResourceKinds#ALL} instead of spelling out each kind. The YAML side is {@link YamlKind}.
 *
 * <p>Limits: two wire kinds may not share a record type (the snapshot would not tell them apart).
 *
 * @param <P> the protobuf message on the wire
 * @param <R> the validated record in the snapshot
 */
public final class ResourceKind<P extends Message, R> implements Slot<R>, ConfigSnapshot.Key<R> {
  /**
   * Decodes and validates one resource; null after recording its problems in {@code fields} (a
   * record returned although a problem was recorded is dropped all the same).
   */
  @FunctionalInterface
  public interface Decode<P, R> {
    @Nullable R decode(ProtoFields fields, P proto);
  }

  private static final String TYPE_URL_PREFIX = "type.googleapis.com/";

  private final String name;
  private final Class<P> protoType;
  private final Class<R> recordType;
  private final String typeUrl;
  private final Decode<P, R> decode;
  private final Function<R, P> encode;
  private final BiFunction<R, Inputs, R> resolve;
  private final List<InputSlot<?>> inputs;
  private final BiPredicate<P, String> servesNode;
  private final @Nullable Comparator<R> order;

  private ResourceKind(Builder<P, R> b) {
    this.name = b.name;
    this.protoType = b.protoType;
    this.recordType = b.recordType;
    this.typeUrl = TYPE_URL_PREFIX + b.descriptor.getFullName();
    this.decode = Objects.requireNonNull(b.decode, b.name + ": decode");
    this.encode = Objects.requireNonNull(b.encode, b.name + ": encode");
    this.resolve = b.resolve;
    this.inputs = List.copyOf(b.inputs);
    this.servesNode = b.servesNode;
    this.order = b.order;
  }

  /**
   * @param name the protobuf message's name, which also starts each of the kind's NACK reasons
   * @param recordType the validated record, which keys the kind's slot in the snapshot
   */
  static <P extends Message, R> Builder<P, R> builder(
      String name, Class<P> protoType, Descriptor descriptor, Class<R> recordType) {
    return new Builder<>(name, protoType, descriptor, recordType);
  }

  /** The kind's name, as the protobuf message is called ("Workload", "HttpRoute"). */
  @Override
  public String name() {
    return name;
  }

  public Class<P> protoType() {
    return protoType;
  }

  /** The record the snapshot holds; the key of the kind's slot there. */
  @Override
  public Class<R> recordType() {
    return recordType;
  }

  /** The xDS type URL: {@code type.googleapis.com/} and the message's full name. */
  public String typeUrl() {
    return typeUrl;
  }

  /**
   * The validated record of resource {@code resourceName}; null after recording in {@code decoder}
   * every problem found ({@code <Type> <resource name>: <field>: <problem>}).
   */
  public @Nullable R decode(ResourceDecoder decoder, String resourceName, P proto) {
    ProtoFields fields = decoder.fields(name, resourceName);
    R record = decode.decode(fields, proto);
    return fields.failed() ? null : record;
  }

  /** The record as its resource (pure: equal records give equal messages, so equal versions). */
  public P encode(R record) {
    return encode.apply(record);
  }

  /**
   * The record as it is sent and snapshotted, given the input-only records: a route's
   * cross-namespace backendRefs checked against the ReferenceGrants; the record itself for kinds
   * without {@link #inputs()}.
   */
  public R resolve(R record, Inputs in) {
    return resolve.apply(record, in);
  }

  /** The input-only slots {@link #resolve} reads: when one of them changes, re-resolve. */
  public List<InputSlot<?>> inputs() {
    return inputs;
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

  /** This kind's values in {@code snapshot}: its slot there ({@link ConfigSnapshot#all}). */
  public List<R> in(ConfigSnapshot snapshot) {
    return snapshot.all(this);
  }

  @Override
  public String toString() {
    return name;
  }

  /** Builds a kind; decode and encode are required. */
  static final class Builder<P extends Message, R> {
    private final String name;
    private final Class<P> protoType;
    private final Descriptor descriptor;
    private final Class<R> recordType;
    private @Nullable Decode<P, R> decode;
    private @Nullable Function<R, P> encode;
    private BiFunction<R, Inputs, R> resolve = (r, in) -> r;
    private List<InputSlot<?>> inputs = List.of();
    private BiPredicate<P, String> servesNode = (p, node) -> true;
    private @Nullable Comparator<R> order;

    private Builder(String name, Class<P> protoType, Descriptor descriptor, Class<R> recordType) {
      this.name = name;
      this.protoType = protoType;
      this.descriptor = descriptor;
      this.recordType = recordType;
    }

    Builder<P, R> decode(Decode<P, R> decode) {
      this.decode = decode;
      return this;
    }

    Builder<P, R> encode(Function<R, P> encode) {
      this.encode = encode;
      return this;
    }

    /** Resolution against input-only slots; {@code inputs} are the slots it reads. */
    Builder<P, R> resolve(BiFunction<R, Inputs, R> resolve, InputSlot<?>... inputs) {
      this.resolve = resolve;
      this.inputs = List.of(inputs);
      return this;
    }

    /** Only some nodes get the resource (default: every node). */
    Builder<P, R> servesNode(BiPredicate<P, String> servesNode) {
      this.servesNode = servesNode;
      return this;
    }

    /** The order the snapshot is built in (default: as given, for kinds the snapshot sorts). */
    Builder<P, R> order(Comparator<R> order) {
      this.order = order;
      return this;
    }

    ResourceKind<P, R> build() {
      return new ResourceKind<>(this);
    }
  }
}
