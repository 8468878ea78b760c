package dev.nodemesh.control.ca;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * The CA's meters: {@code nodemesh_ca_certificates_issued_total}, {@code
 * nodemesh_ca_certificates_refused_total{reason}} (every reason registered at zero, so a rate query
 * has a series before the first refusal) and {@code nodemesh_ca_root_expiry_timestamp_seconds}
 * (when the earliest trusted root expires, as a Unix time, the Prometheus convention for expiries:
 * alert on {@code ... - time() < 30 * 86400}).
 */
public final class CaMetrics {
  private final Counter issued;
  private final Counter[] refused = new Counter[Refusal.values().length];

  public CaMetrics(MeterRegistry registry, CertificateAuthority ca) {
    issued =
        Counter.builder("nodemesh.ca.certificates.issued")
            .description("Workload certificates the CA signed")
            .register(registry);
    for (Refusal r : Refusal.values()) {
      refused[r.ordinal()] =
          Counter.builder("nodemesh.ca.certificates.refused")
              .description("Certificate requests the CA refused, by reason")
              .tag("reason", r.label())
              .register(registry);
    }
    double rootExpiry = ca.rootNotAfter().getEpochSecond();
    Gauge.builder("nodemesh.ca.root.expiry.timestamp", () -> rootExpiry)
        .description("When the earliest root of the trust bundle expires (Unix time)")
        .baseUnit("seconds")
        .register(registry);
  }

  void issued() {
    issued.increment();
  }

  void refused(Refusal reason) {
    refused[reason.ordinal()].increment();
  }

  public double issuedCount() {
    return issued.count();
  }

  public double refusedCount(Refusal reason) {
    return refused[reason.ordinal()].count();
  }
}
