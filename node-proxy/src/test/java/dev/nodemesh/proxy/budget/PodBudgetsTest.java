package dev.nodemesh.proxy.budget;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.unix.Errors;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PodBudgetsTest {
  @org.junit.jupiter.api.BeforeAll
  static void nativeErrors() {
    // Netty's errno exceptions need the native transport's library.
    io.netty.channel.epoll.Epoll.ensureAvailability();
  }

  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final PodBudgets budgets = new PodBudgets(2, 3, registry);

  private double refused(String workload, String reason) {
    Counter c =
        registry
            .find("nodemesh.pod.connections.refused")
            .tags("source_workload", workload, "reason", reason)
            .counter();
    return c == null ? 0 : c.count();
  }

  @Test
  void overItsBudgetAPodsNewConnectionIsResetAndCountedWhileOthersAreAdmitted() {
    PodBudgets.PodBudget attacker = budgets.of(TestPods.pod("attacker"));
    PodBudgets.PodBudget victim = budgets.of(TestPods.pod("victim"));
    List<EmbeddedChannel> open = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      EmbeddedChannel ch = new EmbeddedChannel();
      assertTrue(attacker.admit(ch, Direction.OUTBOUND));
      open.add(ch);
    }
    EmbeddedChannel third = new EmbeddedChannel();
    assertFalse(attacker.admit(third, Direction.OUTBOUND));
    assertFalse(third.isOpen(), "reset at once");
    assertEquals(1, refused("attacker", "budget"));
    assertEquals(2, attacker.open(Direction.OUTBOUND));

    // Another pod, and the attacker's other direction, have budgets of their own.
    EmbeddedChannel v = new EmbeddedChannel();
    assertTrue(victim.admit(v, Direction.OUTBOUND));
    EmbeddedChannel in = new EmbeddedChannel();
    assertTrue(attacker.admit(in, Direction.INBOUND));
    assertEquals(0, refused("victim", "budget"));

    // A closed connection gives its slot back.
    open.get(0).close();
    EmbeddedChannel again = new EmbeddedChannel();
    assertTrue(attacker.admit(again, Direction.OUTBOUND));
    assertEquals(2, attacker.open(Direction.OUTBOUND));
    for (EmbeddedChannel ch : List.of(open.get(1), again, v, in)) {
      ch.finishAndReleaseAll();
    }
    assertEquals(0, attacker.open(Direction.OUTBOUND));
  }

  @Test
  void aPodsUpstreamSocketsHaveABudgetOfTheirOwnPerDirection() {
    PodBudgets.PodBudget fanOut = budgets.of(TestPods.pod("fan-out"));
    PodBudgets.PodBudget victim = budgets.of(TestPods.pod("victim"));
    // One admitted downstream (an h2c connection, say) asks for more upstreams than the budget.
    EmbeddedChannel down = new EmbeddedChannel();
    assertTrue(fanOut.admit(down, Direction.OUTBOUND));
    List<Runnable> claims = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      Runnable claim = budgets.claimUpstream(down);
      assertTrue(claim != null, "claim " + i + " of 3 is within the budget");
      claims.add(claim);
    }
    assertEquals(null, budgets.claimUpstream(down), "the fourth is over the upstream budget");
    assertEquals(1, refused("fan-out", "upstream_budget"));
    assertEquals(3, fanOut.openUpstream(Direction.OUTBOUND));

    // Another pod, and the same pod's inbound side, are untouched.
    EmbeddedChannel v = new EmbeddedChannel();
    assertTrue(victim.admit(v, Direction.OUTBOUND));
    Runnable victimClaim = budgets.claimUpstream(v);
    assertTrue(victimClaim != null);
    EmbeddedChannel in = new EmbeddedChannel();
    assertTrue(fanOut.admit(in, Direction.INBOUND));
    Runnable inboundClaim = budgets.claimUpstream(in);
    assertTrue(inboundClaim != null);
    assertEquals(0, refused("victim", "upstream_budget"));

    // A socket that closes gives its claim back once, however often it is run.
    claims.get(0).run();
    claims.get(0).run();
    assertEquals(2, fanOut.openUpstream(Direction.OUTBOUND));
    Runnable again = budgets.claimUpstream(down);
    assertTrue(again != null);
    assertEquals(null, budgets.claimUpstream(down));
    assertEquals(2, refused("fan-out", "upstream_budget"));

    // An upstream claim outlives its downstream (a pooled connection): closing the downstream
    // does not give it back.
    down.finishAndReleaseAll();
    assertEquals(3, fanOut.openUpstream(Direction.OUTBOUND));
    for (Runnable r : List.of(claims.get(1), claims.get(2), again, victimClaim, inboundClaim)) {
      r.run();
    }
    assertEquals(0, fanOut.openUpstream(Direction.OUTBOUND));
    assertEquals(0, fanOut.openUpstream(Direction.INBOUND));
    v.finishAndReleaseAll();
    in.finishAndReleaseAll();
  }

  @Test
  void anHttp2StreamsUpstreamCountsAgainstItsConnectionsPodAndAStrayChannelAgainstNone() {
    PodBudgets.PodBudget pod = budgets.of(TestPods.pod("h2"));
    EmbeddedChannel connection = new EmbeddedChannel();
    assertTrue(pod.admit(connection, Direction.INBOUND));
    EmbeddedChannel stream =
        new EmbeddedChannel(
            connection, io.netty.channel.DefaultChannelId.newInstance(), true, false);
    Runnable claim = budgets.claimUpstream(stream);
    assertTrue(claim != null);
    assertEquals(1, pod.openUpstream(Direction.INBOUND));
    claim.run();
    assertEquals(0, pod.openUpstream(Direction.INBOUND));

    // A channel no pod's listener admitted (the proxy's own) is never refused or counted.
    EmbeddedChannel stray = new EmbeddedChannel();
    for (int i = 0; i < 10; i++) {
      assertTrue(budgets.claimUpstream(stray) != null);
    }
    assertEquals(0, refused("h2", "upstream_budget"));
    stream.finishAndReleaseAll();
    connection.finishAndReleaseAll();
    stray.finishAndReleaseAll();
  }

  @Test
  void releaseForgetsThePodAndItsSeries() {
    int meters = registry.getMeters().size();
    PodBudgets.PodBudget b = budgets.of(TestPods.pod("gone"));
    b.refused(Direction.OUTBOUND, PodBudgets.Reason.BUDGET);
    b.refused(Direction.INBOUND, PodBudgets.Reason.FD_EXHAUSTED);
    assertEquals(meters + 2, registry.getMeters().size());
    assertEquals(1, budgets.size());
    budgets.release(TestPods.pod("gone"));
    assertEquals(meters, registry.getMeters().size());
    assertEquals(0, budgets.size());
  }

  @Test
  void aBudgetBelowOneIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new PodBudgets(0, 1, registry));
    assertThrows(IllegalArgumentException.class, () -> new PodBudgets(1, 0, registry));
  }

  @Test
  void theDefaultBudgetLeavesRoomForEightFullPods() {
    assertEquals(1186, FdLimit.defaultBudget(20_000));
    assertEquals(65_472, FdLimit.defaultBudget(1_048_576));
    assertEquals(64, FdLimit.defaultBudget(1024));
  }

  /** What the server channel's pipeline sees after AcceptGuard. */
  private static final class Seen extends ChannelInboundHandlerAdapter {
    final List<Throwable> causes = new ArrayList<>();

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      causes.add(cause);
    }
  }

  @Test
  void outOfFdsOnAcceptIsCountedForThePodAndPausesOnlyBriefly() {
    Seen seen = new Seen();
    EmbeddedChannel listener =
        new EmbeddedChannel(
            new AcceptGuard(budgets.of(TestPods.pod("busy")), Direction.OUTBOUND), seen);
    listener.pipeline().fireExceptionCaught(Errors.newIOException("accept", -24));
    assertEquals(1, refused("busy", "fd_exhausted"));
    assertTrue(seen.causes.isEmpty(), "not passed on to Netty's one-second accept pause");
    assertFalse(listener.config().isAutoRead(), "this listener pauses");
    listener.advanceTimeBy(AcceptGuard.BACKOFF_MILLIS, java.util.concurrent.TimeUnit.MILLISECONDS);
    listener.runScheduledPendingTasks();
    assertTrue(listener.config().isAutoRead(), "and accepts again after the back-off");

    listener.pipeline().fireExceptionCaught(new IOException("something else"));
    assertEquals(1, seen.causes.size(), "other accept errors go on");
    listener.finishAndReleaseAll();
  }

  @Test
  void enfileAndNiosMessageAreFdExhaustionToo() {
    assertTrue(AcceptGuard.outOfFds(Errors.newIOException("accept", -23)));
    assertTrue(AcceptGuard.outOfFds(new IOException("Too many open files")));
    assertFalse(AcceptGuard.outOfFds(Errors.newIOException("accept", -104)));
  }
}
