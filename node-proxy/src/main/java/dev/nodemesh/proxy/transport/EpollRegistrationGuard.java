package dev.nodemesh.proxy.transport;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.epoll.AbstractEpollStreamChannel;
import io.netty.channel.epoll.Native;
import java.lang.reflect.Method;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Works around a Netty 4.2.18 epoll bug that loses data on half-closed connections: when a
 * channel's interest set becomes empty (input shut down, nothing pending to write), Netty removes
 * the fd from epoll but remembers it as still added; the next blocked write then asks epoll to
 * modify an fd it no longer has, fails with ENOENT, and Netty fails the write and shuts the output.
 * A relay hits this whenever a client half-closes while the reply is still flowing to it (found by
 * the 128 MiB echo test: about 2 MiB went missing).
 *
 * <p>Keeping EPOLLERR in the interest set (the kernel reports errors whether asked or not, so this
 * changes no behaviour) means the set never becomes empty and the fd is never removed. Netty's
 * {@code setFlag} is not public, hence reflection; on any other transport this does nothing. The
 * relay closes a socket as soon as both its directions have ended, so a socket shut down both ways
 * never sits registered reporting EPOLLHUP. Remove once the pinned Netty has the fix.
 *
 * <p>Applied before the channel is registered, the flag only joins the interest set that Netty's
 * registration hands to epoll anyway; applied after, it costs one more {@code epoll_ctl} per
 * socket. So the proxy applies it where its sockets are made: {@link Transport#clientChannels} for
 * upstream sockets, {@link #ON_ACCEPT} on the in-pod listeners for accepted ones.
 */
public final class EpollRegistrationGuard {
  private static final Logger log = LoggerFactory.getLogger(EpollRegistrationGuard.class);
  private static final @Nullable Method SET_FLAG = findSetFlag();

  /**
   * A listener's handler that applies the guard to each accepted channel before the listener's
   * acceptor registers it with an I/O loop. Runs on the accept thread; the registration, handed to
   * the I/O loop as a task, publishes the flag to it.
   */
  public static final ChannelHandler ON_ACCEPT = new OnAccept();

  private EpollRegistrationGuard() {}

  @ChannelHandler.Sharable
  private static final class OnAccept extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof Channel child && !child.isRegistered()) {
        apply(child);
      }
      ctx.fireChannelRead(msg);
    }
  }

  private static @Nullable Method findSetFlag() {
    try {
      Class<?> c = Class.forName("io.netty.channel.epoll.AbstractEpollChannel");
      Method m = c.getDeclaredMethod("setFlag", int.class);
      m.setAccessible(true);
      return m;
    } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
      log.warn("epoll registration guard unavailable; half-closed epoll relays may fail", e);
      return null;
    }
  }

  /**
   * Before the channel is registered (no system call: the registration includes the flag), or on
   * its event loop after (one {@code epoll_ctl}). Does nothing when the flag is set already.
   */
  public static void apply(Channel ch) {
    if (!(ch instanceof AbstractEpollStreamChannel) || SET_FLAG == null) {
      return;
    }
    try {
      SET_FLAG.invoke(ch, Native.EPOLLERR);
    } catch (ReflectiveOperationException e) {
      log.debug("could not keep {} registered with epoll", ch, e);
    }
  }
}
