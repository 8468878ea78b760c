package dev.nodemesh.proxy.budget;

import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.unix.Errors;
import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * The first handler of an in-pod listening socket: the pod's budget, and what happens when {@code
 * accept} fails.
 *
 * <p>Each accepted connection is admitted against the pod's budget here, on the accept thread,
 * before it is handed to an I/O loop ({@link PodBudgets.PodBudget#admit}); one past the budget is
 * reset and its socket closed at once, never registered. Refusing on the I/O loop instead (after
 * registration) let a flood's accepted sockets queue up behind the loops' work: a test pod's 30,000
 * connections against a budget of 1,000 held 2,300 fds at once, and the refusals took the loop time
 * the other pods' connections needed ({@code HostilePodRootTest}).
 *
 * <p>Out of file descriptors ({@code EMFILE} for the process, {@code ENFILE} for the system),
 * Netty's own acceptor would stop that listener for a whole second and log a WARN with a stack
 * trace each time; and since fds are the process's, every pod's listener would do so at once. Here
 * the failure is counted for the listener's pod ({@code reason="fd_exhausted"}, logged at most once
 * per interval by {@link PodBudgets.PodBudget#refused}), and only that listener pauses, for {@value
 * #BACKOFF_MILLIS} ms: long enough not to spin the accept thread on a listener that cannot accept,
 * short enough that accepting resumes as soon as any connection closes. The waiting connection
 * stays in the kernel's backlog meanwhile. The per-pod budgets are what keep one pod from getting
 * there. Other accept errors go on to Netty's handling.
 */
public final class AcceptGuard extends ChannelInboundHandlerAdapter {
  static final long BACKOFF_MILLIS = 50;
  private static final int EMFILE = 24;
  private static final int ENFILE = 23;

  private final PodBudgets.PodBudget budget;
  private final Direction direction;

  public AcceptGuard(PodBudgets.PodBudget budget, Direction direction) {
    this.budget = budget;
    this.direction = direction;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof Channel child && !budget.admit(child, direction)) {
      return; // reset and closed: over the pod's budget
    }
    ctx.fireChannelRead(msg);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    if (!outOfFds(cause)) {
      ctx.fireExceptionCaught(cause);
      return;
    }
    budget.refused(direction, PodBudgets.Reason.FD_EXHAUSTED);
    var config = ctx.channel().config();
    if (config.isAutoRead()) {
      config.setAutoRead(false);
      var unused =
          ctx.executor()
              .schedule(
                  () -> {
                    if (ctx.channel().isOpen()) {
                      config.setAutoRead(true);
                    }
                  },
                  BACKOFF_MILLIS,
                  TimeUnit.MILLISECONDS);
    }
  }

  /** EMFILE or ENFILE from epoll/io_uring's accept, or NIO's message for them. */
  static boolean outOfFds(Throwable cause) {
    if (cause instanceof Errors.NativeIoException n) {
      int errno = Math.abs(n.expectedErr()); // Netty keeps it negative, as the syscall returned it
      return errno == EMFILE || errno == ENFILE;
    }
    return cause instanceof IOException
        && cause.getMessage() != null
        && cause.getMessage().contains("Too many open files");
  }
}
