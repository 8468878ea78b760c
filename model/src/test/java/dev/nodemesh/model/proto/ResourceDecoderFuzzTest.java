package dev.nodemesh.model.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.kind.HttpRouteKind;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzzes the node proxy's side of xDS: arbitrary bytes as one resource kind's protobuf, then {@link
 * ResourceDecoder} through the kind's descriptor, then the snapshot the proxy would build from it,
 * as {@code XdsClient} does with a delta response. Every input must end as a record in a snapshot
 * or as a rejection with reasons (bytes that are no such message, decoder errors naming the field,
 * or an inconsistent snapshot's {@link IllegalArgumentException}, which the client NACKs); any
 * other exception is a finding, and so is a decoder that returns a record while recording an error,
 * or null without one.
 *
 * <p>The input's last byte picks the kind, the one before it how the resource is named (after the
 * message's own namespace and name, with the GRPCRoute prefix, or a fuzzed string taken from the
 * front); the rest is the message. Regression mode replays {@code src/test/resources/.../
 * ResourceDecoderFuzzTestInputs/decodesOrRejectsWithAReason}: messages the kinds' encoders made
 * from the YAML seeds of {@code ConfigLoaderFuzzTest}.
 */
class ResourceDecoderFuzzTest {

  @FuzzTest(maxDuration = "30s")
  void decodesOrRejectsWithAReason(FuzzedDataProvider data) {
    ResourceKind<?, ?> kind =
        ResourceKinds.ALL.get(data.consumeInt(0, ResourceKinds.ALL.size() - 1));
    int naming = data.consumeInt(0, 2);
    String fuzzedName = naming == 2 ? data.consumeString(64) : "";
    decode(kind, naming, fuzzedName, data.consumeRemainingAsBytes());
  }

  private static <P extends Message, R> void decode(
      ResourceKind<P, R> kind, int naming, String fuzzedName, byte[] bytes) {
    P proto;
    try {
      @SuppressWarnings("unchecked") // the default instance's parser makes messages of its type
      P parsed =
          (P)
              com.google.protobuf.Internal.getDefaultInstance(kind.protoType())
                  .getParserForType()
                  .parseFrom(bytes);
      proto = parsed;
    } catch (InvalidProtocolBufferException e) {
      return; // XdsClient NACKs "not a <Type>" with the parser's message
    }
    String name =
        switch (naming) {
          case 0 -> field(proto, "namespace") + "/" + field(proto, "name");
          case 1 ->
              HttpRouteKind.GRPC_ROUTE_PREFIX
                  + field(proto, "namespace")
                  + "/"
                  + field(proto, "name");
          default -> fuzzedName;
        };
    List<String> errors = new ArrayList<>();
    R value = kind.decode(new ResourceDecoder(errors), name, proto);
    if (value == null) {
      assertFalse(errors.isEmpty(), "rejected without a reason: " + proto);
      for (String e : errors) {
        assertFalse(e.isBlank(), "a blank reason: " + errors);
      }
      return;
    }
    assertEquals(List.of(), errors, "a record despite errors");
    ConfigSnapshot snapshot;
    try {
      snapshot = ResourceKinds.snapshot(1, new OneValue<>(kind, value));
    } catch (IllegalArgumentException e) {
      assertFalse(e.getMessage() == null || e.getMessage().isBlank(), "no reason: " + e);
      return;
    }
    assertEquals(1, snapshot.version());
  }

  private static String field(Message proto, String name) {
    FieldDescriptor f = proto.getDescriptorForType().findFieldByName(name);
    return f == null ? "" : String.valueOf(proto.getField(f));
  }

  /** The snapshot's values: {@code value} in its kind's slot, every other slot empty. */
  private record OneValue<V>(ResourceKind<?, V> kind, V value) implements ResourceKinds.Values {
    @Override
    @SuppressWarnings("unchecked") // only the kind's own slot gets the value, of its type
    public <R> List<R> of(ResourceKind<?, R> k) {
      return k == kind ? (List<R>) List.of(value) : List.of();
    }
  }
}
