package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import java.net.InetAddress;
import org.jspecify.annotations.Nullable;

/**
 * What one allowed connection was admitted with, kept by {@link Admissions} while it is open so
 * that every later snapshot can be asked the same question: the caller as it was checked
 * (principal, address, mTLS), the destination and port, and the check itself. The destination's
 * labels are the one input read again from each snapshot ({@link #destinationIn}): a relabelled pod
 * is what a new connection to it would be checked as.
 *
 * <p>Confined to the connection's event loop once registered (the re-check runs there), so its one
 * mutable field is plain.
 */
public final class Admission {

  /** The question a connection was admitted by, asked again of a newer snapshot. */
  @FunctionalInterface
  public interface Check {
    /**
     * Null while the connection may stay under {@code snapshot}; otherwise why not. Pure over the
     * snapshot and the admission's inputs: no I/O, no locks (it runs on the connection's loop).
     */
    @Nullable Refusal check(ConfigSnapshot snapshot);
  }

  /**
   * A connection that policy no longer admits.
   *
   * @param destination the workload whose policy refuses it (its labels name the denial)
   * @param destinationPort the port that policy was checked for
   * @param decision the refusing decision (its reason goes to the log; the metric says {@link
   *     Admissions#POLICY_CHANGED})
   */
  public record Refusal(Workload destination, int destinationPort, Decision decision) {}

  private final String reporter;
  private final @Nullable SpiffeId principal;
  private final InetAddress address;
  private final @Nullable ConnectionLog accessLog;
  private final Check check;
  private ConfigSnapshot checkedAgainst;

  /**
   * @param reporter the metrics label of the side that admitted it ("source" for same-node
   *     outbound, "destination" on the receiving side)
   * @param source the caller as it was checked
   * @param admittedUnder the snapshot the admission was decided on (not asked again)
   * @param accessLog the connection's access-log line, which gets the denial (null: not logged)
   */
  public Admission(
      String reporter,
      ConnectionSource source,
      ConfigSnapshot admittedUnder,
      @Nullable ConnectionLog accessLog,
      Check check) {
    this.reporter = reporter;
    this.principal = source.principal();
    this.address = source.address();
    this.accessLog = accessLog;
    this.check = check;
    this.checkedAgainst = admittedUnder;
  }

  /**
   * The admission of a connection checked once, as a whole, by {@code authorizer}: the same call
   * with the same caller and port against each newer snapshot.
   *
   * @param beforeRequests the connection was admitted with {@link Authorizer#checkBeforeRequests}
   *     because every request on it is checked again at L7 (an HBONE stream parsed for HTTP);
   *     otherwise {@link Authorizer#check}, where L7 conditions fail closed
   */
  public static Admission connection(
      Authorizer authorizer,
      boolean beforeRequests,
      String reporter,
      ConfigSnapshot admittedUnder,
      Workload destination,
      int destinationPort,
      ConnectionSource source,
      @Nullable ConnectionLog accessLog) {
    return new Admission(
        reporter,
        source,
        admittedUnder,
        accessLog,
        snapshot -> {
          Workload now = destinationIn(snapshot, destination);
          Decision d =
              beforeRequests
                  ? authorizer.checkBeforeRequests(snapshot, now, destinationPort, source)
                  : authorizer.check(snapshot, now, destinationPort, source);
          return d.allowed() ? null : new Refusal(now, destinationPort, d);
        });
  }

  /**
   * {@code admitted} as {@code snapshot} has it: the workload at one of its addresses when that is
   * the same pod (namespace and name), so a label change counts; else {@code admitted} itself (a
   * pod the config no longer lists, or one only enrolled, keeps the view it was admitted with, and
   * an address reused by another pod never stands in for it).
   */
  static Workload destinationIn(ConfigSnapshot snapshot, Workload admitted) {
    for (InetAddress ip : admitted.ips()) {
      Workload w = snapshot.workloadByIp(ip);
      if (w != null
          && w.name().equals(admitted.name())
          && w.namespace().equals(admitted.namespace())) {
        return w;
      }
    }
    return admitted;
  }

  String reporter() {
    return reporter;
  }

  @Nullable SpiffeId principal() {
    return principal;
  }

  InetAddress address() {
    return address;
  }

  @Nullable ConnectionLog accessLog() {
    return accessLog;
  }

  /** The snapshot this admission was last decided on. */
  ConfigSnapshot checkedAgainst() {
    return checkedAgainst;
  }

  /**
   * Asks the check of {@code snapshot} unless this admission was already decided on that very
   * snapshot; remembers it either way.
   */
  @Nullable Refusal recheck(ConfigSnapshot snapshot) {
    if (snapshot == checkedAgainst) {
      return null;
    }
    checkedAgainst = snapshot;
    return check.check(snapshot);
  }
}
