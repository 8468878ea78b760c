package dev.nodemesh.model.kind;

import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.parse.HttpFaultParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.time.Duration;
import java.util.Comparator;
import org.jspecify.annotations.Nullable;

/**
 * nodemesh's HTTPFault ({@code traffic.nodemesh.dev}): a delay and/or an abort that a route rule
 * names through an ExtensionRef filter. The percentages travel as the parts per million they are.
 */
public final class HttpFaultKind {
  private HttpFaultKind() {}

  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpFault, HttpFault> WIRE =
      ResourceKind.builder(
              "HttpFault",
              dev.nodemesh.api.config.v1.HttpFault.class,
              dev.nodemesh.api.config.v1.HttpFault.getDescriptor(),
              HttpFault.class)
          .decode(HttpFaultKind::decode)
          .encode(HttpFaultKind::encode)
          .order(Comparator.comparing(HttpFault::namespace).thenComparing(HttpFault::name))
          .build();

  public static final YamlKind<HttpFault> YAML =
      new YamlKind<>(
          "HTTPFault",
          YamlKind.TRAFFIC_GROUP,
          "v1alpha1",
          "httpfaults",
          ApiVersions.GROUP,
          false,
          (file, errors, doc, label) -> new HttpFaultParser(file, errors).parse(doc, label),
          WIRE,
          HttpFault::id,
          YamlKind::plainName);

  public static dev.nodemesh.api.config.v1.HttpFault encode(HttpFault f) {
    var b =
        dev.nodemesh.api.config.v1.HttpFault.newBuilder()
            .setName(f.name())
            .setNamespace(f.namespace());
    var d = f.delay();
    if (d != null) {
      Duration fixed = d.fixed();
      // Both fields: fixed_delay exact, fixed_delay_ms rounded up for proxies that predate it
      // (rounding down would turn a sub-millisecond delay into 0, which they NACK).
      long ceilMs = fixed.plusNanos(999_999).toMillis();
      b.setDelay(
          dev.nodemesh.api.config.v1.HttpFault.Delay.newBuilder()
              .setFixedDelayMs(ceilMs)
              .setFixedDelay(
                  com.google.protobuf.Duration.newBuilder()
                      .setSeconds(fixed.getSeconds())
                      .setNanos(fixed.getNano()))
              .setPerMillion(d.perMillion()));
    }
    var a = f.abort();
    if (a != null) {
      Integer grpc = a.grpcStatus();
      b.setAbort(
          dev.nodemesh.api.config.v1.HttpFault.Abort.newBuilder()
              .setHttpStatus(a.httpStatus())
              .setGrpcStatus(grpc == null ? 0 : grpc)
              .setPerMillion(a.perMillion()));
    }
    return b.build();
  }

  /** Same limits as {@link HttpFaultParser}; each bad field is named. */
  static @Nullable HttpFault decode(ProtoFields f, dev.nodemesh.api.config.v1.HttpFault hf) {
    f.identity(hf.getNamespace(), hf.getName());
    HttpFault.Delay delay = null;
    if (hf.hasDelay()) {
      var d = hf.getDelay();
      Duration fixed;
      if (d.hasFixedDelay()) {
        // The exact delay; fixed_delay_ms (its rounded copy for older proxies) is not read.
        var pd = d.getFixedDelay();
        fixed = Duration.ofSeconds(pd.getSeconds(), pd.getNanos());
        if (pd.getNanos() < 0 || pd.getNanos() > 999_999_999 || fixed.isNegative()) {
          f.error("delay.fixed_delay", "is not a valid positive google.protobuf.Duration");
        } else if (fixed.isZero()) {
          f.error("delay.fixed_delay", "must be above 0");
        }
      } else {
        if (d.getFixedDelayMs() == 0) {
          f.error("delay.fixed_delay_ms", "must be above 0");
        }
        fixed = Duration.ofMillis(d.getFixedDelayMs());
      }
      f.atMost(d.getPerMillion(), HttpFault.MILLION, "delay.per_million");
      if (!fixed.isNegative() && !fixed.isZero()) {
        delay = new HttpFault.Delay(fixed, d.getPerMillion());
      }
    }
    HttpFault.Abort abort = null;
    if (hf.hasAbort()) {
      var a = hf.getAbort();
      f.atMost(a.getPerMillion(), HttpFault.MILLION, "abort.per_million");
      if (a.getGrpcStatus() != 0) {
        if (a.getGrpcStatus() < 1 || a.getGrpcStatus() > 16) {
          f.error("abort.grpc_status", (a.getGrpcStatus() & 0xffffffffL) + " is not in 1-16");
        }
        abort = new HttpFault.Abort(200, a.getGrpcStatus(), a.getPerMillion());
      } else {
        if (a.getHttpStatus() < 200 || a.getHttpStatus() > 599) {
          f.error("abort.http_status", (a.getHttpStatus() & 0xffffffffL) + " is not in 200-599");
        }
        abort = new HttpFault.Abort(a.getHttpStatus(), null, a.getPerMillion());
      }
    }
    if (delay == null && abort == null) {
      f.error("delay", "delay or abort is required");
    }
    if (f.failed()) {
      return null;
    }
    return new HttpFault(hf.getName(), hf.getNamespace(), delay, abort);
  }
}
