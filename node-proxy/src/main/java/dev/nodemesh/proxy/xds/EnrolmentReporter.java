package dev.nodemesh.proxy.xds;

import dev.nodemesh.api.enrolment.v1.EnrolmentServiceGrpc;
import dev.nodemesh.api.enrolment.v1.ReportEnrolledRequest;
import dev.nodemesh.api.enrolment.v1.ReportEnrolledResponse;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tells the control plane which pods this node proxy has enrolled (their uids), so it marks a
 * workload captured only once a proxy serves it: a pod that was running before nodemesh was
 * installed matches the capture scope but was never enrolled, and other nodes must reach it
 * directly. Uses the xDS channel, so the call carries the node's token like the xDS stream.
 *
 * <p>Each report is the whole set. Reports start with {@link #start()}, which the proxy calls after
 * its start-up re-enrolment (so a restarted proxy never reports a half-filled set); then after each
 * change ({@link #changed()}), at most one call in flight (changes meanwhile ride on the next one),
 * failures retried with backoff, and again every {@code refreshNanos} (a control plane that
 * restarted, or a replica that never heard from this node, learns the set again). A control plane
 * without the service (older than this proxy) answers UNIMPLEMENTED: logged once, then only the
 * periodic report tries again.
 *
 * <p>Threading: confined to {@code executor} (the xDS client's); gRPC callbacks hop onto it.
 */
public final class EnrolmentReporter implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EnrolmentReporter.class);
  private static final long DEADLINE_SECONDS = 10;

  private final Channel channel;
  private final String nodeName;
  private final Supplier<Set<String>> enrolledUids;
  private final ScheduledExecutorService executor;
  private final Backoff backoff;
  private final long refreshNanos;

  // Executor only.
  private boolean started;
  private boolean closed;
  private boolean inFlight;
  private boolean again;
  private boolean unimplementedLogged;
  private @Nullable ScheduledFuture<?> retry;
  private @Nullable ScheduledFuture<?> refresh;

  public EnrolmentReporter(
      Channel channel,
      String nodeName,
      Supplier<Set<String>> enrolledUids,
      ScheduledExecutorService executor,
      Backoff backoff,
      long refreshNanos) {
    this.channel = channel;
    this.nodeName = nodeName;
    this.enrolledUids = enrolledUids;
    this.executor = executor;
    this.backoff = backoff;
    this.refreshNanos = refreshNanos;
  }

  /** Sends the first report now and keeps reporting from here on. */
  public void start() {
    executor.execute(
        () -> {
          if (closed || started) {
            return;
          }
          started = true;
          refresh =
              executor.scheduleWithFixedDelay(
                  this::send, refreshNanos, refreshNanos, TimeUnit.NANOSECONDS);
          send();
        });
  }

  /** The enrolled set changed: a report follows (once started). */
  public void changed() {
    executor.execute(this::send);
  }

  private void send() {
    if (!started || closed) {
      return;
    }
    if (inFlight) {
      again = true;
      return;
    }
    ScheduledFuture<?> r = retry;
    if (r != null) {
      r.cancel(false);
      retry = null;
    }
    inFlight = true;
    again = false;
    Set<String> uids = new TreeSet<>(enrolledUids.get());
    EnrolmentServiceGrpc.newStub(channel)
        .withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
        .reportEnrolled(
            ReportEnrolledRequest.newBuilder().setNode(nodeName).addAllPodUids(uids).build(),
            new StreamObserver<ReportEnrolledResponse>() {
              @Override
              public void onNext(ReportEnrolledResponse value) {}

              @Override
              public void onError(Throwable t) {
                executor.execute(() -> failed(uids.size(), Status.fromThrowable(t)));
              }

              @Override
              public void onCompleted() {
                executor.execute(() -> done(uids.size()));
              }
            });
  }

  private void done(int count) {
    inFlight = false;
    backoff.reset();
    log.debug("reported {} enrolled pods to the control plane", count);
    if (again) {
      send();
    }
  }

  private void failed(int count, Status status) {
    inFlight = false;
    if (closed) {
      return;
    }
    if (status.getCode() == Status.Code.UNIMPLEMENTED) {
      if (!unimplementedLogged) {
        unimplementedLogged = true;
        log.warn(
            "the control plane does not take enrolment reports (older than this proxy?): other"
                + " nodes may tunnel to pods it thinks captured; trying again every {} s",
            TimeUnit.NANOSECONDS.toSeconds(refreshNanos));
      }
      return;
    }
    long delay = backoff.nextDelayNanos();
    log.warn(
        "reporting {} enrolled pods to the control plane failed ({}); again in {} ms",
        count,
        status,
        TimeUnit.NANOSECONDS.toMillis(delay));
    retry = executor.schedule(this::send, delay, TimeUnit.NANOSECONDS);
  }

  @Override
  public void close() {
    executor.execute(
        () -> {
          closed = true;
          for (ScheduledFuture<?> f : new ScheduledFuture<?>[] {retry, refresh}) {
            if (f != null) {
              f.cancel(false);
            }
          }
        });
  }
}
