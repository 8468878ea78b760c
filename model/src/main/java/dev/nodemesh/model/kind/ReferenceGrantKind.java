package dev.nodemesh.model.kind;

import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.parse.ReferenceGrantParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;

/**
 * Gateway API ReferenceGrants: read by every source, never sent ({@link #SLOT} is input-only). A
 * route's cross-namespace backendRefs are resolved against them before the route is pushed ({@link
 * HttpRouteKind}), so proxies need none of their own.
 */
public final class ReferenceGrantKind {
  private ReferenceGrantKind() {}

  public static final InputSlot<ReferenceGrant> SLOT = new InputSlot<>("ReferenceGrant");

  public static final YamlKind<ReferenceGrant> YAML =
      new YamlKind<>(
          "ReferenceGrant",
          ReferenceGrant.GATEWAY_GROUP,
          "v1beta1",
          "referencegrants",
          ApiVersions.GROUP,
          false,
          (file, errors, doc, label) -> new ReferenceGrantParser(file, errors).parse(doc, label),
          SLOT,
          ReferenceGrant::id,
          YamlKind::plainName);
}
