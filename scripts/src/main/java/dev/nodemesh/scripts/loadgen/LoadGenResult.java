package dev.nodemesh.scripts.loadgen;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;
import org.HdrHistogram.Histogram;

/**
 * What one run measured (measured period only; the warm-up is left out). Latencies are in
 * nanoseconds in the histogram, reported in microseconds.
 *
 * @param scheduled requests whose intended time fell in the measured period ({@code rate *
 *     duration})
 * @param sent of those, written to a connection
 * @param completed of those, answered with a complete response (any status)
 * @param non2xx of the completed, status outside 200..399
 * @param connectErrors requests whose new connection failed (new-connection mode)
 * @param resets requests whose connection or stream closed before the response
 * @param timeouts requests not answered by the end of the drain period (including never sent)
 * @param reconnects kept-alive connections replaced after closing
 * @param achievedRate completed requests per second, from the first intended time of the measured
 *     period to the last completion
 */
public record LoadGenResult(
    LoadGen.Mode mode,
    String url,
    int connections,
    int streams,
    double targetRate,
    double durationSeconds,
    long scheduled,
    long sent,
    long completed,
    long non2xx,
    long connectErrors,
    long resets,
    long timeouts,
    long reconnects,
    double achievedRate,
    Histogram latencyNanos) {

  /** All requests that did not end in a 2xx/3xx response. */
  public long errors() {
    return non2xx + connectErrors + resets + timeouts;
  }

  /** Latency at {@code percentile} (0..100) in microseconds; 0 without samples. */
  public double percentileMicros(double percentile) {
    return latencyNanos.getTotalCount() == 0
        ? 0
        : latencyNanos.getValueAtPercentile(percentile) / 1000.0;
  }

  public double maxMicros() {
    return latencyNanos.getTotalCount() == 0 ? 0 : latencyNanos.getMaxValue() / 1000.0;
  }

  /** How many samples were at least {@code micros}. */
  public long samplesAtLeastMicros(double micros) {
    long n = 0;
    long threshold = (long) (micros * 1000);
    for (var v : latencyNanos.recordedValues()) {
      if (latencyNanos.lowestEquivalentValue(v.getValueIteratedTo()) >= threshold) {
        n += v.getCountAtValueIteratedTo();
      }
    }
    return n;
  }

  /** Human-readable summary, several lines. */
  public String text() {
    String how =
        switch (mode) {
          case HTTP1 -> "HTTP/1.1 keep-alive, " + connections + " connection(s)";
          case H2C ->
              "h2c (prior knowledge), "
                  + connections
                  + " connection(s) x up to "
                  + streams
                  + " streams";
          case HTTP1_CLOSE ->
              "HTTP/1.1, a new connection per request, up to " + connections + " at once";
        };
    return String.format(
        Locale.ROOT,
        "loadgen: %s, %s, target %.0f req/s for %.1f s%n"
            + "  scheduled %d, sent %d, completed %d, errors %d (non-2xx %d, connect %d, reset %d,"
            + " timeout %d), reconnects %d%n"
            + "  achieved %.1f req/s%n"
            + "  latency from the intended send time (µs): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f"
            + "  max %.1f%n",
        url,
        how,
        targetRate,
        durationSeconds,
        scheduled,
        sent,
        completed,
        errors(),
        non2xx,
        connectErrors,
        resets,
        timeouts,
        reconnects,
        achievedRate,
        percentileMicros(50),
        percentileMicros(90),
        percentileMicros(99),
        percentileMicros(99.9),
        maxMicros());
  }

  /** One JSON object (one line), for scripts. */
  public String json() {
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode o = mapper.createObjectNode();
    o.put("mode", mode.name().toLowerCase(Locale.ROOT));
    o.put("url", url);
    o.put("connections", connections);
    o.put("streams", streams);
    o.put("target_rate", targetRate);
    o.put("duration_s", durationSeconds);
    o.put("scheduled", scheduled);
    o.put("sent", sent);
    o.put("completed", completed);
    o.put("errors", errors());
    o.put("non_2xx", non2xx);
    o.put("connect_errors", connectErrors);
    o.put("resets", resets);
    o.put("timeouts", timeouts);
    o.put("reconnects", reconnects);
    o.put("achieved_rate", round1(achievedRate));
    o.put("p50_us", round1(percentileMicros(50)));
    o.put("p90_us", round1(percentileMicros(90)));
    o.put("p99_us", round1(percentileMicros(99)));
    o.put("p999_us", round1(percentileMicros(99.9)));
    o.put("max_us", round1(maxMicros()));
    return o.toString();
  }

  private static double round1(double v) {
    return Math.round(v * 10) / 10.0;
  }
}
