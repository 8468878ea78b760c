package dev.nodemesh.model.kind;

import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.parse.PeerAuthenticationParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The mesh's PeerAuthentication ({@code security.nodemesh.dev}): the mTLS mode of the workloads it
 * selects. Unordered: the snapshot sorts and indexes them itself. Required, like every policy kind.
 */
public final class PeerAuthenticationKind {
  private PeerAuthenticationKind() {}

  public static final ResourceKind<
          dev.nodemesh.api.config.v1.PeerAuthentication, PeerAuthentication>
      WIRE =
          ResourceKind.builder(
                  "PeerAuthentication",
                  dev.nodemesh.api.config.v1.PeerAuthentication.class,
                  dev.nodemesh.api.config.v1.PeerAuthentication.getDescriptor(),
                  PeerAuthentication.class)
              .decode(PeerAuthenticationKind::decode)
              .encode(PeerAuthenticationKind::encode)
              .build();

  public static final YamlKind<PeerAuthentication> YAML =
      new YamlKind<>(
          "PeerAuthentication",
          YamlKind.SECURITY_GROUP,
          "v1alpha1",
          "peerauthentications",
          ApiVersions.EXACT,
          true,
          (file, errors, doc, label) ->
              new PeerAuthenticationParser(file, errors).parse(doc, label),
          WIRE,
          PeerAuthentication::id,
          YamlKind::plainName);

  public static dev.nodemesh.api.config.v1.PeerAuthentication encode(PeerAuthentication p) {
    var b =
        dev.nodemesh.api.config.v1.PeerAuthentication.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setMode(
                p.mode() == PeerAuthentication.Mode.STRICT
                    ? dev.nodemesh.api.config.v1.PeerAuthentication.Mode.STRICT
                    : dev.nodemesh.api.config.v1.PeerAuthentication.Mode.PERMISSIVE);
    Map<String, String> selector = p.selector();
    if (selector != null) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(selector));
    }
    return b.build();
  }

  static @Nullable PeerAuthentication decode(
      ProtoFields f, dev.nodemesh.api.config.v1.PeerAuthentication p) {
    f.identity(p.getNamespace(), p.getName());
    PeerAuthentication.Mode mode = null;
    switch (p.getMode()) {
      case STRICT -> mode = PeerAuthentication.Mode.STRICT;
      case PERMISSIVE -> mode = PeerAuthentication.Mode.PERMISSIVE;
      default -> f.error("mode", p.getMode() + " is not STRICT or PERMISSIVE");
    }
    if (f.failed() || mode == null) {
      return null;
    }
    return new PeerAuthentication(
        p.getName(), p.getNamespace(), p.getSelector().getMatchLabelsMap(), mode);
  }
}
