package dev.nodemesh.model.proto;

import dev.nodemesh.model.config.Cidr;
import dev.nodemesh.model.config.FieldRules;
import dev.nodemesh.model.config.TextMatch;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.PatternSyntaxException;
import org.jspecify.annotations.Nullable;

/**
 * The field checks every kind's xDS decoder shares, for one resource: identity, ports and port
 * names, IPs and CIDRs, name patterns, HTTP methods, string matches and bounded numbers, each
 * problem recorded as {@code <Type> <resource name>: <field>: <problem>}. The predicates are {@link
 * FieldRules}, the ones the YAML parser applies, so the control plane never sends what a proxy
 * would refuse. The control plane validates the same objects when it reads them, so a problem here
 * means the two disagree (versions, or a bug), which is exactly what a NACK is for.
 *
 * <p>Limits: one instance per resource ({@link ResourceDecoder#fields}); {@link #failed()} counts
 * only the problems recorded through it.
 */
public final class ProtoFields {
  /** What a GRPCRoute's resource name starts with (see the HttpRoute kind's resource name). */
  public static final String GRPC_ROUTE_PREFIX = "GRPCRoute/";

  private final List<String> errors;
  private final String where;
  private final String resourceName;
  private final int before;

  ProtoFields(List<String> errors, String type, String resourceName) {
    this.errors = errors;
    this.where = type + " " + resourceName;
    this.resourceName = resourceName;
    this.before = errors.size();
  }

  /** True once any problem of this resource was recorded: the resource must not be used. */
  public boolean failed() {
    return errors.size() > before;
  }

  /** Records that {@code path} has {@code problem}. */
  public void error(String path, String problem) {
    errors.add(where + ": " + path + ": " + problem);
  }

  /** Name and namespace are set and the resource name is {@code <namespace>/<name>}. */
  public void identity(String namespace, String name) {
    identity(namespace, name, "");
  }

  /** Name and namespace are set and the resource name is {@code <prefix><namespace>/<name>}. */
  public void identity(String namespace, String name, String prefix) {
    if (name.isEmpty()) {
      error("name", "is required");
    }
    if (namespace.isEmpty()) {
      error("namespace", "is required");
    }
    if (!resourceName.equals(prefix + namespace + "/" + name)) {
      error("name", "resource name must be \"" + prefix + namespace + "/" + name + "\"");
    }
  }

  public boolean port(int port, String path) {
    if (!FieldRules.isPort(port)) {
      error(path, port + " is out of range 1-65535");
      return false;
    }
    return true;
  }

  public boolean portName(String name, String path) {
    if (!FieldRules.isPortName(name)) {
      error(path, "\"" + name + "\" is not a valid port name");
      return false;
    }
    return true;
  }

  public @Nullable InetAddress ip(String text, String path) {
    InetAddress ip = FieldRules.ipLiteral(text);
    if (ip == null) {
      error(path, "\"" + text + "\" is not an IP address");
    }
    return ip;
  }

  public List<Cidr> cidrs(List<String> values, String path) {
    List<Cidr> out = new ArrayList<>();
    for (int i = 0; i < values.size(); i++) {
      Cidr c = Cidr.parse(values.get(i));
      if (c == null) {
        error(path + "[" + i + "]", "\"" + values.get(i) + "\" is not an IP or CIDR block");
      } else {
        out.add(c);
      }
    }
    return out;
  }

  /** Same rules as the YAML parser: exact, or one '*' first or last; exact principals spiffe://. */
  public List<String> patterns(List<String> values, String path, boolean principal) {
    for (int i = 0; i < values.size(); i++) {
      String v = values.get(i);
      int star = v.indexOf('*');
      boolean wellFormed =
          !v.isEmpty()
              && (star < 0
                  || (v.indexOf('*', star + 1) < 0 && (star == 0 || star == v.length() - 1)));
      if (!wellFormed) {
        error(path + "[" + i + "]", "\"" + v + "\" is not an exact value, prefix* or *suffix");
      } else if (principal && star < 0 && !v.startsWith("spiffe://")) {
        error(path + "[" + i + "]", "\"" + v + "\" is not a spiffe:// URI");
      }
    }
    return values;
  }

  public void method(String m, String path) {
    if (!FieldRules.isHttpMethod(m)) {
      error(path, "\"" + m + "\" is not an HTTP method");
    }
  }

  /** The match, or null after recording an unknown kind or a regular expression that is not. */
  public @Nullable TextMatch text(dev.nodemesh.api.config.v1.StringMatch m, String path) {
    TextMatch.Kind kind =
        switch (m.getKind()) {
          case EXACT -> TextMatch.Kind.EXACT;
          case PATH_PREFIX -> TextMatch.Kind.PATH_PREFIX;
          case REGULAR_EXPRESSION -> TextMatch.Kind.REGULAR_EXPRESSION;
          case UNRECOGNIZED -> null;
        };
    if (kind == null) {
      error(path + ".kind", "unknown kind " + m.getKindValue());
      return null;
    }
    try {
      return new TextMatch(kind, m.getName(), m.getValue());
    } catch (PatternSyntaxException e) {
      error(path + ".value", "\"" + m.getValue() + "\" is not a valid regular expression");
      return null;
    }
  }

  /** A proto uint32 that must be in 1..Integer.MAX_VALUE. */
  public int positive(int value, String path) {
    if (value <= 0) {
      error(path, (value & 0xffffffffL) + " is not in 1-" + Integer.MAX_VALUE);
    }
    return value;
  }

  /** A proto uint32 that must be in {@code 0..max}. */
  public void atMost(int value, int max, String path) {
    if (value < 0 || value > max) {
      error(path, (value & 0xffffffffL) + " is not in 0-" + max);
    }
  }
}
