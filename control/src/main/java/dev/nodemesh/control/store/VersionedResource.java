package dev.nodemesh.control.store;

import com.google.protobuf.Any;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Message;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * One resource as it goes on the wire: its name, its content version and the packed message. The
 * version is a hash of the message's deterministic serialization, so equal content has an equal
 * version after a relist, a restart or on another replica: nothing is pushed for a change that is
 * not one, and a reconnecting node's {@code initial_resource_versions} still match. The {@link Any}
 * is packed once and shared by every node's response.
 */
public record VersionedResource(String name, String version, Message message, Any any) {

  public static VersionedResource of(String name, Message message) {
    byte[] bytes = deterministic(message);
    return new VersionedResource(
        name, hash(bytes), message, Any.pack(message)); // Any.pack re-serializes; cheap, once
  }

  private static byte[] deterministic(Message message) {
    // Map fields (labels) must serialize in one order for equal content to hash equally.
    ByteArrayOutputStream out = new ByteArrayOutputStream(message.getSerializedSize());
    CodedOutputStream coded = CodedOutputStream.newInstance(out);
    coded.useDeterministicSerialization();
    try {
      message.writeTo(coded);
      coded.flush();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  private static String hash(byte[] bytes) {
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(bytes);
      return HexFormat.of().formatHex(digest, 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}
