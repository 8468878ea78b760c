package dev.nodemesh.proxy.liveness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.budget.AcceptGuard;
import dev.nodemesh.proxy.budget.Direction;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.budget.TestPods;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.util.internal.OutOfDirectMemoryError;
import java.lang.reflect.Constructor;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** An Error on a data-plane thread reaches the exit hook; ordinary exceptions do not. */
class FatalErrorsTest {
  private final List<Integer> exits = new CopyOnWriteArrayList<>();

  @BeforeEach
  void hook() {
    FatalErrors.install(exits::add);
  }

  @AfterEach
  void unhook() {
    FatalErrors.install(null);
  }

  /** A handler that fails as a real one might, deep in a codec. */
  private static final class Throwing extends ChannelInboundHandlerAdapter {
    private final Throwable error;

    Throwing(Throwable error) {
      this.error = error;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
      if (error instanceof Error e) {
        throw e;
      }
      throw (Exception) error;
    }
  }

  @Test
  void anErrorThrownInAPipelineEndsTheProcessThroughTheConnectionsOwnHandler() {
    // Netty catches what channelRead throws and hands it to exceptionCaught: the proxy's handler
    // there (here a listener's AcceptGuard) must not just close the connection or pass it on.
    PodBudgets budgets = new PodBudgets(10, 10, new SimpleMeterRegistry());
    EmbeddedChannel ch =
        new EmbeddedChannel(
            new Throwing(new StackOverflowError("deep")),
            new AcceptGuard(budgets.of(TestPods.pod("a")), Direction.OUTBOUND));
    // The hook here records instead of exiting, so the error goes on to the pipeline's end.
    assertThrows(StackOverflowError.class, () -> ch.writeInbound("x"));
    assertEquals(List.of(FatalErrors.EXIT_STATUS), exits);
    ch.finishAndReleaseAll();
  }

  @Test
  void anErrorWrappedByACodecIsFatalToo() {
    assertFalse(FatalErrors.check(new DecoderException(new OutOfMemoryError("Java heap space"))));
    assertEquals(List.of(FatalErrors.EXIT_STATUS), exits);
  }

  @Test
  void ordinaryExceptionsAreNotFatal() {
    assertFalse(FatalErrors.check(new java.io.IOException("Connection reset by peer")));
    assertFalse(FatalErrors.check(new IllegalStateException("x", new RuntimeException())));
    assertTrue(exits.isEmpty());
  }

  @Test
  void aDirectMemoryRefusalIsContainedAndCounted() throws Exception {
    long before = FatalErrors.allocationFailures();
    Constructor<OutOfDirectMemoryError> c =
        OutOfDirectMemoryError.class.getDeclaredConstructor(String.class);
    c.setAccessible(true);
    assertTrue(FatalErrors.check(new DecoderException(c.newInstance("failed to allocate"))));
    assertEquals(before + 1, FatalErrors.allocationFailures());
    assertTrue(exits.isEmpty());
  }

  @Test
  void anErrorEscapingADataPlaneThreadIsFatal() throws Exception {
    Thread t =
        FatalErrors.threads("test-io")
            .newThread(
                () -> {
                  throw new OutOfMemoryError("simulated");
                });
    t.start();
    t.join(10_000);
    assertEquals(List.of(FatalErrors.EXIT_STATUS), exits);
  }
}
