package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Applies the {@link Authorizer}'s decision to a connection on its event loop: a denied connection
 * is reset at once (RST, so the caller sees a refusal, never an empty success), counted in {@code
 * nodemesh_policy_denials_total} and logged at debug with the deciding policy. The decision is left
 * on the channel ({@link #DECISION}) for whoever logs the connection later (the access log). An
 * allowed connection is registered with {@link Admissions}, which asks the same question again when
 * the policy changes.
 */
public final class PolicyEnforcement {
  private static final Logger log = LoggerFactory.getLogger(PolicyEnforcement.class);

  /** The authorization decision taken for the connection on this (downstream) channel. */
  public static final AttributeKey<Decision> DECISION =
      AttributeKey.valueOf(PolicyEnforcement.class, "decision");

  private PolicyEnforcement() {}

  /**
   * Checks {@code source} against {@code destination} with {@code authorizer}; when denied, counts
   * it in {@code metrics} and resets {@code downstream}; when allowed, admits it in {@code
   * admissions} (the same check after each policy change). Call on the channel's event loop.
   *
   * @param reporter metrics label: "destination" on the receiving side, "source" for same-node
   *     outbound (where this proxy is both)
   * @param accessLog the connection's access-log record (null: not logged); it gets the decision
   *     and the caller's principal, and a denied connection's line is finished here (flag DENY)
   * @return the decision; the caller goes on only when it allows
   */
  public static Decision enforce(
      Authorizer authorizer,
      ProxyMetrics metrics,
      Admissions admissions,
      Channel downstream,
      ConfigSnapshot snapshot,
      Workload destination,
      int destinationPort,
      ConnectionSource source,
      String reporter,
      @Nullable ConnectionLog accessLog) {
    Decision d = authorizer.check(snapshot, destination, destinationPort, source);
    downstream.attr(DECISION).set(d);
    if (accessLog != null) {
      accessLog.authz(d.allowed() ? "allow" : "deny", d.policy());
      if (source.principal() != null) {
        accessLog.sourcePrincipal(source.principal().toString());
      }
    }
    if (d.allowed()) {
      admissions.admit(
          downstream,
          Admission.connection(
              authorizer,
              false,
              reporter,
              snapshot,
              destination,
              destinationPort,
              source,
              accessLog));
    } else {
      metrics
          .policyDenials(
              reporter,
              TrafficLabels.principal(source.principal()),
              destination.name(),
              destination.namespace(),
              d.reason())
          .increment();
      log.debug(
          "denied {} -> {}:{} ({}): {} by {}",
          source.principal() == null ? "plaintext" : source.principal(),
          destination.id(),
          destinationPort,
          source.address().getHostAddress(),
          d.reason(),
          d.policy());
      Relays.reset(downstream);
      if (accessLog != null) {
        accessLog.flag(ResponseFlag.DENY).finish();
      }
    }
    return d;
  }

  /**
   * The workload a check is made against when the config does not know an enrolled pod yet: its
   * name and namespace with no labels, so namespace- and mesh-wide policies (default-deny, STRICT)
   * still apply while selector-based ones cannot match it.
   */
  public static Workload enrolledOnly(EnrolledPod pod) {
    List<InetAddress> ips = pod.ips();
    return new Workload(
        pod.uid(), pod.name(), pod.namespace(), ips, Map.of(), "default", "", Map.of());
  }
}
