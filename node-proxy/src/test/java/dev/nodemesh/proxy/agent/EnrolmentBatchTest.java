package dev.nodemesh.proxy.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The start-up re-enrolment's concurrency: prepared on a pool, committed on the calling (agent)
 * thread in order, one failure reported without stopping the rest, repeated uids one by one after
 * the batch, an interrupted batch committing nothing more and letting go of what it prepared.
 */
class EnrolmentBatchTest {
  private static final String POOL = "batch-test-";
  private final AtomicInteger poolThreads = new AtomicInteger();
  private final ExecutorService pool =
      Executors.newFixedThreadPool(
          2,
          r -> {
            Thread t = new Thread(r, POOL + poolThreads.incrementAndGet());
            t.setDaemon(true);
            return t;
          });

  @AfterEach
  void tearDown() throws InterruptedException {
    pool.shutdownNow();
    assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
  }

  static Enroller.PodSpec spec(String uid) {
    return new Enroller.PodSpec(
        uid,
        "pod-" + uid,
        "default",
        "/var/run/netns/" + uid,
        List.of(InetAddress.getLoopbackAddress()));
  }

  /** Records what ran where; {@code onPrepare} may block or throw for a spec. */
  static final class Steps implements EnrolmentBatch.Steps<String> {
    final List<String> events = Collections.synchronizedList(new ArrayList<>());
    final List<String> committed = Collections.synchronizedList(new ArrayList<>());
    final List<String> discarded = Collections.synchronizedList(new ArrayList<>());
    final Set<String> enrolled = new HashSet<>();
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger mostAtOnce = new AtomicInteger();
    final PrepareHook onPrepare;

    interface PrepareHook {
      void run(String uid) throws Exception;
    }

    Steps(PrepareHook onPrepare) {
      this.onPrepare = onPrepare;
    }

    @Override
    public boolean enrolled(String uid) {
      return enrolled.contains(uid);
    }

    @Override
    public String prepare(Enroller.PodSpec spec) throws IOException {
      mostAtOnce.accumulateAndGet(running.incrementAndGet(), Math::max);
      try {
        events.add("prepare " + spec.uid() + " on " + Thread.currentThread().getName());
        onPrepare.run(spec.uid());
        return spec.uid() + "/" + spec.name();
      } catch (IOException | RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new IOException(e);
      } finally {
        running.decrementAndGet();
      }
    }

    @Override
    public void commit(String prepared) {
      events.add("commit " + prepared + " on " + Thread.currentThread().getName());
      committed.add(prepared);
    }

    @Override
    public void discard(String prepared) {
      discarded.add(prepared);
    }

    @Override
    public void add(Enroller.PodSpec spec) throws IOException {
      events.add(
          "add " + spec.uid() + "/" + spec.name() + " on " + Thread.currentThread().getName());
      if (spec.name().equals("broken")) {
        throw new IOException("add failed");
      }
      committed.add(spec.uid() + "/" + spec.name());
    }
  }

  @Test
  void preparesOnThePoolAndCommitsEveryPodOnTheCallingThreadInTheSpecsOrder() throws Exception {
    Steps steps = new Steps(uid -> {});
    List<Enroller.PodSpec> specs = List.of(spec("a"), spec("b"), spec("c"), spec("d"), spec("e"));
    List<Enroller.Attempt> attempts = EnrolmentBatch.run(specs, pool, steps);
    assertEquals(specs, attempts.stream().map(Enroller.Attempt::spec).toList());
    attempts.forEach(a -> assertNull(a.failure(), a.toString()));
    assertEquals(List.of("a/pod-a", "b/pod-b", "c/pod-c", "d/pod-d", "e/pod-e"), steps.committed);
    String caller = Thread.currentThread().getName();
    for (String e : steps.events) {
      if (e.startsWith("prepare")) {
        assertTrue(e.contains(" on " + POOL), e);
      } else {
        assertTrue(e.endsWith(" on " + caller), e);
      }
    }
  }

  @Test
  void aFailingPodIsReportedAndTheOthersAreEnrolled() throws Exception {
    Steps steps =
        new Steps(
            uid -> {
              if (uid.equals("b")) {
                throw new IOException("cannot enter /var/run/netns/b");
              }
              if (uid.equals("d")) {
                throw new IllegalStateException("handles closed");
              }
            });
    List<Enroller.Attempt> attempts =
        EnrolmentBatch.run(List.of(spec("a"), spec("b"), spec("c"), spec("d")), pool, steps);
    assertNull(attempts.get(0).failure());
    IOException b = attempts.get(1).failure();
    assertNotNull(b);
    assertEquals("cannot enter /var/run/netns/b", b.getMessage());
    assertNull(attempts.get(2).failure());
    IOException d = attempts.get(3).failure();
    assertNotNull(d);
    assertTrue(d.getMessage().contains("handles closed"), d.getMessage());
    assertInstanceOf(IllegalStateException.class, d.getCause());
    assertEquals(List.of("a/pod-a", "c/pod-c"), steps.committed);
  }

  /** Two prepares meet at a barrier: only possible when they run at once; never three at once. */
  @Test
  void preparesRunConcurrentlyUpToThePoolSize() throws Exception {
    CyclicBarrier pair = new CyclicBarrier(2);
    Steps steps = new Steps(uid -> pair.await(30, TimeUnit.SECONDS));
    List<Enroller.Attempt> attempts =
        EnrolmentBatch.run(
            List.of(spec("a"), spec("b"), spec("c"), spec("d"), spec("e"), spec("f")), pool, steps);
    attempts.forEach(a -> assertNull(a.failure(), a.toString()));
    assertEquals(2, steps.mostAtOnce.get());
    assertEquals(6, steps.committed.size());
  }

  @Test
  void anEnrolledOrRepeatedUidGoesThroughAddOnTheCallingThreadAfterTheBatch() throws Exception {
    Steps steps = new Steps(uid -> {});
    steps.enrolled.add("x");
    Enroller.PodSpec again =
        new Enroller.PodSpec("a", "broken", "default", "/var/run/netns/a2", List.of());
    List<Enroller.PodSpec> specs = List.of(spec("x"), spec("a"), again, spec("b"));
    List<Enroller.Attempt> attempts = EnrolmentBatch.run(specs, pool, steps);
    assertEquals(specs, attempts.stream().map(Enroller.Attempt::spec).toList());
    assertNull(attempts.get(0).failure());
    assertNull(attempts.get(1).failure());
    IOException repeated = attempts.get(2).failure();
    assertNotNull(repeated);
    assertEquals("add failed", repeated.getMessage());
    assertNull(attempts.get(3).failure());
    String caller = Thread.currentThread().getName();
    List<String> onCaller = steps.events.stream().filter(e -> !e.startsWith("prepare")).toList();
    assertEquals(
        List.of(
            "commit a/pod-a on " + caller,
            "commit b/pod-b on " + caller,
            "add x/pod-x on " + caller,
            "add a/broken on " + caller),
        onCaller);
  }

  /**
   * The proxy closing while it re-enrols: the agent thread is interrupted. Nothing more is
   * committed; what finished is discarded (its listeners and namespace handle closed), what is
   * still running is cancelled.
   */
  @Test
  void anInterruptedBatchCommitsNothingMoreAndDiscardsWhatFinished() throws Exception {
    // Counts tasks whose future is complete (afterExecute runs after the result is set), so the
    // interrupt comes when b and c are done, not merely returning.
    CountDownLatch othersDone = new CountDownLatch(2);
    ThreadPoolExecutor counting =
        new ThreadPoolExecutor(2, 2, 0, TimeUnit.SECONDS, new LinkedBlockingQueue<>()) {
          @Override
          protected void afterExecute(Runnable r, @Nullable Throwable t) {
            othersDone.countDown();
          }
        };
    AtomicBoolean firstInterrupted = new AtomicBoolean();
    Steps steps =
        new Steps(
            uid -> {
              if (uid.equals("a")) {
                try {
                  new CountDownLatch(1).await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                  firstInterrupted.set(true);
                  throw e;
                }
              }
            });
    AtomicReference<@Nullable Throwable> thrown = new AtomicReference<>();
    AtomicBoolean stillInterrupted = new AtomicBoolean();
    try {
      Thread agent =
          thread(
              () -> {
                try {
                  EnrolmentBatch.run(List.of(spec("a"), spec("b"), spec("c")), counting, steps);
                } catch (InterruptedIOException e) {
                  thrown.set(e);
                  stillInterrupted.set(Thread.currentThread().isInterrupted());
                }
              });
      assertTrue(othersDone.await(30, TimeUnit.SECONDS));
      agent.interrupt();
      agent.join(30_000);
      assertInstanceOf(InterruptedIOException.class, thrown.get());
      assertTrue(stillInterrupted.get(), "the interrupt is kept for the caller");
      assertEquals(List.of(), steps.committed);
      assertEquals(Set.of("b/pod-b", "c/pod-c"), Set.copyOf(steps.discarded));
    } finally {
      counting.shutdown();
      assertTrue(counting.awaitTermination(30, TimeUnit.SECONDS));
    }
    assertTrue(firstInterrupted.get(), "the running prepare was cancelled");
  }

  private static Thread thread(Runnable r) {
    Thread t = new Thread(r, "agent-under-test");
    t.setDaemon(true);
    t.start();
    return t;
  }
}
