package dev.nodemesh.proxy.agent;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import org.jspecify.annotations.Nullable;

/**
 * Enrols many pods at once without giving up the agent's one-thread order: the slow, independent
 * part of each enrolment ({@link Steps#prepare}: namespace, listeners, capture, mostly waiting for
 * child processes and netlink) runs on a pool, while the calling thread (the agent's) waits for
 * every one and does the rest ({@link Steps#commit}: the enrolled set, the registry) itself, in the
 * specs' order. Whatever the agent thread runs after the batch therefore sees all of it, as if the
 * pods had been enrolled one by one.
 *
 * <p>A spec whose uid is enrolled already, or repeats an earlier spec's uid, is not prepared
 * concurrently: it goes through {@link Steps#add} on the calling thread after the others (an add of
 * a known uid compares and replaces, which must not race with its twin). Limits: the pool's size
 * bounds the concurrency; a spec's failure is its own, never the batch's.
 */
final class EnrolmentBatch {
  private EnrolmentBatch() {}

  /** The enroller's side of a batch. */
  interface Steps<P> {
    /** True when {@code uid} is enrolled now; on the calling thread. */
    boolean enrolled(String uid);

    /** The independent part of one enrolment; on a pool thread, undoing itself when it throws. */
    P prepare(Enroller.PodSpec spec) throws IOException;

    /** Finishes a prepared enrolment; on the calling thread. */
    void commit(P prepared);

    /** Lets go of a prepared enrolment that will not be committed (the batch was interrupted). */
    void discard(P prepared);

    /** A whole enrolment, as a single AddPod; on the calling thread. */
    void add(Enroller.PodSpec spec) throws IOException;
  }

  /**
   * Runs the batch; one attempt per spec, in their order.
   *
   * @throws InterruptedIOException when the calling thread is interrupted: what is still running is
   *     cancelled, what finished and was not committed yet is discarded
   */
  static <P> List<Enroller.Attempt> run(
      List<Enroller.PodSpec> specs, ExecutorService pool, Steps<P> steps)
      throws InterruptedIOException {
    List<@Nullable Future<P>> running = new ArrayList<>();
    Set<String> uids = new HashSet<>();
    for (Enroller.PodSpec spec : specs) {
      if (steps.enrolled(spec.uid()) || !uids.add(spec.uid())) {
        running.add(null);
      } else {
        running.add(pool.submit(() -> steps.prepare(spec)));
      }
    }
    Map<Integer, Enroller.Attempt> attempts = new TreeMap<>();
    for (int i = 0; i < specs.size(); i++) {
      Future<P> f = running.get(i);
      if (f == null) {
        continue;
      }
      try {
        steps.commit(f.get());
        attempts.put(i, new Enroller.Attempt(specs.get(i), null));
      } catch (ExecutionException e) {
        attempts.put(i, new Enroller.Attempt(specs.get(i), asIoException(e.getCause())));
      } catch (InterruptedException e) {
        abandon(running.subList(i, running.size()), steps);
        Thread.currentThread().interrupt();
        InterruptedIOException stop = new InterruptedIOException("interrupted while enrolling");
        stop.initCause(e);
        throw stop;
      }
    }
    for (int i = 0; i < specs.size(); i++) {
      if (running.get(i) == null) {
        try {
          steps.add(specs.get(i));
          attempts.put(i, new Enroller.Attempt(specs.get(i), null));
        } catch (IOException | RuntimeException e) {
          attempts.put(i, new Enroller.Attempt(specs.get(i), asIoException(e)));
        }
      }
    }
    return List.copyOf(attempts.values());
  }

  private static IOException asIoException(@Nullable Throwable t) {
    return t instanceof IOException io ? io : new IOException(String.valueOf(t), t);
  }

  /**
   * Cancels what is still running and discards what finished: never committed, those pods are
   * picked up again by the next start. A cancelled prepare that was past its last interruptible
   * wait may still finish; what it opened then goes with the proxy (which is closing).
   */
  private static <P> void abandon(List<@Nullable Future<P>> futures, Steps<P> steps) {
    for (Future<P> f : futures) {
      if (f == null || f.cancel(true)) {
        continue;
      }
      P done;
      try {
        done = f.get(); // cancel() failed: it is done
      } catch (ExecutionException | InterruptedException | RuntimeException e) {
        continue; // failed, and undid itself
      }
      steps.discard(done);
    }
  }
}
