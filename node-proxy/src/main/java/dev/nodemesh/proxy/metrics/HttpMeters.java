package dev.nodemesh.proxy.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;

/**
 * The request meters of one label set: one counter per response code class (1xx..5xx; index 0 for
 * requests that got no response, e.g. the client went away), and the request duration histogram.
 */
public final class HttpMeters {
  /** Values of the {@code response_code_class} label, by {@code status / 100} (0 = none). */
  static final String[] CLASSES = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

  private final Counter[] requests;
  private final Timer duration;

  HttpMeters(Counter[] requests, Timer duration) {
    this.requests = requests;
    this.duration = duration;
  }

  /** One request ended with {@code status} (0 = no response) after {@code nanos}. */
  public void record(int status, long nanos) {
    int cls = status / 100;
    requests[cls >= 1 && cls <= 5 ? cls : 0].increment();
    duration.record(nanos, TimeUnit.NANOSECONDS);
  }

  /** Requests counted so far with this status class (tests). */
  public double count(int statusClass) {
    return requests[statusClass].count();
  }
}
