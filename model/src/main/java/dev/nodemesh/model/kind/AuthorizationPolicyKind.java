package dev.nodemesh.model.kind;

import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.Cidr;
import dev.nodemesh.model.config.parse.AuthorizationPolicyParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The mesh's AuthorizationPolicy ({@code security.nodemesh.dev}); Istio's kind of the same name
 * (security.istio.io) is not ours and is ignored like any other. Unordered: the snapshot sorts and
 * indexes policies itself. Required: the control plane does not start without its CRD, since policy
 * must never be silently ignored.
 */
public final class AuthorizationPolicyKind {
  private AuthorizationPolicyKind() {}

  public static final ResourceKind<
          dev.nodemesh.api.config.v1.AuthorizationPolicy, AuthorizationPolicy>
      WIRE =
          ResourceKind.builder(
                  "AuthorizationPolicy",
                  dev.nodemesh.api.config.v1.AuthorizationPolicy.class,
                  dev.nodemesh.api.config.v1.AuthorizationPolicy.getDescriptor(),
                  AuthorizationPolicy.class)
              .decode(AuthorizationPolicyKind::decode)
              .encode(AuthorizationPolicyKind::encode)
              .build();

  public static final YamlKind<AuthorizationPolicy> YAML =
      new YamlKind<>(
          "AuthorizationPolicy",
          YamlKind.SECURITY_GROUP,
          "v1alpha1",
          "authorizationpolicies",
          ApiVersions.EXACT,
          true,
          (file, errors, doc, label) ->
              new AuthorizationPolicyParser(file, errors).parse(doc, label),
          WIRE,
          AuthorizationPolicy::id,
          YamlKind::plainName);

  public static dev.nodemesh.api.config.v1.AuthorizationPolicy encode(AuthorizationPolicy p) {
    var b =
        dev.nodemesh.api.config.v1.AuthorizationPolicy.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setAction(
                p.action() == AuthorizationPolicy.Action.ALLOW
                    ? dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.ALLOW
                    : dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.DENY);
    if (!p.selector().isEmpty()) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(p.selector()));
    }
    // Rule, source and operation order is kept: it has no meaning, but it is what the user wrote,
    // and the same file always gives the same order (so the same version).
    for (AuthorizationPolicy.Rule r : p.rules()) {
      var rb = dev.nodemesh.api.config.v1.AuthorizationPolicy.Rule.newBuilder();
      for (AuthorizationPolicy.Source src : r.from()) {
        rb.addFrom(
            dev.nodemesh.api.config.v1.AuthorizationPolicy.Source.newBuilder()
                .addAllPrincipals(src.principals())
                .addAllNotPrincipals(src.notPrincipals())
                .addAllNamespaces(src.namespaces())
                .addAllNotNamespaces(src.notNamespaces())
                .addAllIpBlocks(src.ipBlocks().stream().map(Cidr::toString).toList())
                .addAllNotIpBlocks(src.notIpBlocks().stream().map(Cidr::toString).toList()));
      }
      for (AuthorizationPolicy.Operation op : r.to()) {
        rb.addTo(
            dev.nodemesh.api.config.v1.AuthorizationPolicy.Operation.newBuilder()
                .addAllPorts(op.ports())
                .addAllNotPorts(op.notPorts())
                .addAllMethods(op.methods())
                .addAllNotMethods(op.notMethods())
                .addAllPaths(op.paths())
                .addAllNotPaths(op.notPaths())
                .putAllHeaders(op.headers()));
      }
      b.addRules(rb);
    }
    return b.build();
  }

  static @Nullable AuthorizationPolicy decode(
      ProtoFields f, dev.nodemesh.api.config.v1.AuthorizationPolicy p) {
    f.identity(p.getNamespace(), p.getName());
    AuthorizationPolicy.Action action = null;
    switch (p.getAction()) {
      case ALLOW -> action = AuthorizationPolicy.Action.ALLOW;
      case DENY -> action = AuthorizationPolicy.Action.DENY;
      default -> f.error("action", p.getAction() + " is not ALLOW or DENY");
    }
    List<AuthorizationPolicy.Rule> rules = new ArrayList<>();
    for (int i = 0; i < p.getRulesCount(); i++) {
      var r = p.getRules(i);
      String rpath = "rules[" + i + "]";
      List<AuthorizationPolicy.Source> from = new ArrayList<>();
      for (int j = 0; j < r.getFromCount(); j++) {
        var src = r.getFrom(j);
        String spath = rpath + ".from[" + j + "]";
        if (src.getSerializedSize() == 0) {
          f.error(spath, "is empty; name at least one field");
        }
        from.add(
            new AuthorizationPolicy.Source(
                f.patterns(src.getPrincipalsList(), spath + ".principals", true),
                f.patterns(src.getNotPrincipalsList(), spath + ".not_principals", true),
                f.patterns(src.getNamespacesList(), spath + ".namespaces", false),
                f.patterns(src.getNotNamespacesList(), spath + ".not_namespaces", false),
                f.cidrs(src.getIpBlocksList(), spath + ".ip_blocks"),
                f.cidrs(src.getNotIpBlocksList(), spath + ".not_ip_blocks")));
      }
      List<AuthorizationPolicy.Operation> to = new ArrayList<>();
      for (int j = 0; j < r.getToCount(); j++) {
        var op = r.getTo(j);
        String opath = rpath + ".to[" + j + "]";
        if (op.getSerializedSize() == 0) {
          f.error(opath, "is empty; name at least one field");
        }
        for (int k = 0; k < op.getPortsCount(); k++) {
          f.port(op.getPorts(k), opath + ".ports[" + k + "]");
        }
        for (int k = 0; k < op.getNotPortsCount(); k++) {
          f.port(op.getNotPorts(k), opath + ".not_ports[" + k + "]");
        }
        for (String m : op.getMethodsList()) {
          f.method(m, opath + ".methods");
        }
        for (String m : op.getNotMethodsList()) {
          f.method(m, opath + ".not_methods");
        }
        to.add(
            new AuthorizationPolicy.Operation(
                op.getPortsList(),
                op.getNotPortsList(),
                op.getMethodsList(),
                op.getNotMethodsList(),
                f.patterns(op.getPathsList(), opath + ".paths", false),
                f.patterns(op.getNotPathsList(), opath + ".not_paths", false),
                op.getHeadersMap()));
      }
      rules.add(new AuthorizationPolicy.Rule(from, to));
    }
    if (f.failed() || action == null) {
      return null;
    }
    return new AuthorizationPolicy(
        p.getName(), p.getNamespace(), p.getSelector().getMatchLabelsMap(), action, rules);
  }
}
