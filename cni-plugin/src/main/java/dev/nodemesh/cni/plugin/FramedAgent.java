package dev.nodemesh.cni.plugin;

import dev.nodemesh.model.cni.AgentWire;
import dev.nodemesh.model.cni.AgentWire.Pod;
import dev.nodemesh.model.cni.AgentWire.Reply;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jspecify.annotations.Nullable;

/**
 * The node agent over its framed Unix socket ({@link AgentWire}, the JDK's own {@code
 * UnixDomainSocketAddress}): what the plugin uses, so a pod start loads no gRPC, Netty or protobuf.
 * One connection per call, a deadline over connect, write and read together.
 *
 * <p>Failures read as the gRPC client's did: {@code node agent at <socket>: AddPod failed: <STATUS>
 * <description> (<cause>)}, with {@code UNAVAILABLE} for a socket nobody answers on and {@code
 * DEADLINE_EXCEEDED} when the agent did not answer in time.
 */
final class FramedAgent implements Agent {
  private final Path socket;
  private final Duration deadline;

  private FramedAgent(Path socket, Duration deadline) {
    this.socket = socket;
    this.deadline = deadline;
  }

  /**
   * {@code agentSocket} is the agent's gRPC socket as the conflist names it; the framed one is
   * beside it ({@link AgentWire#socketFor}). Fails at once when that file is missing (node proxy
   * not running yet) rather than after the deadline.
   */
  static Agent open(Path agentSocket, Duration deadline) throws AgentException {
    Path socket = AgentWire.socketFor(agentSocket);
    if (!Files.exists(socket)) {
      throw new AgentException(
          "node agent socket " + socket + " does not exist: is the nodemesh node proxy running?");
    }
    return new FramedAgent(socket, deadline);
  }

  /**
   * Starts the JDK's Unix-domain socket support on a thread of its own, for a call that will reach
   * the agent. Its first use costs a call about a tenth of its CPU: the selector provider, and the
   * static initialiser of {@code sun.nio.ch.UnixDomainSockets}, which seeds a {@code SecureRandom}
   * for temporary socket names ({@code java.security.Security}, the SUN provider, {@code
   * NativePRNG}) whether or not one is ever made. Started first thing, that runs on the machine's
   * other core while the call reads stdin, checks the netns and writes the record; the agent call
   * then finds it done, or waits for the rest (a class is initialised once, other threads wait for
   * it). CPU time is the same; the pod start is shorter.
   */
  static void warmUpInBackground() {
    Thread t = new Thread(new WarmUp(), "nodemesh-cni-warm-up");
    t.setDaemon(true);
    t.start();
  }

  /**
   * A class, not a lambda: the AOT cache holds it whether or not the training resolved a call site.
   */
  private static final class WarmUp implements Runnable {
    @Override
    public void run() {
      try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        // opened and closed: only the classes' initialisation was wanted
      } catch (IOException | RuntimeException e) {
        // the agent call, if any, meets the same failure and reports it
      }
    }
  }

  @Override
  public boolean addPod(Pod pod) throws AgentException {
    return call("AddPod", new AgentWire.AddPod(pod)).flag();
  }

  @Override
  public boolean delPod(String uid, String netnsPath) throws AgentException {
    return call("DelPod", new AgentWire.DelPod(uid, netnsPath)).flag();
  }

  @Override
  public List<Pod> listPods() throws AgentException {
    return call("ListPods", new AgentWire.ListPods()).pods();
  }

  private Reply call(String name, AgentWire.Request request) throws AgentException {
    ByteBuffer out = ByteBuffer.wrap(AgentWire.encode(request));
    Reply reply;
    AtomicBoolean timedOut = new AtomicBoolean();
    Thread timer = null;
    try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      timer = deadline(ch, timedOut);
      ch.connect(UnixDomainSocketAddress.of(socket));
      while (out.hasRemaining()) {
        ch.write(out);
      }
      reply = AgentWire.decodeReply(AgentWire.readFrame(ch));
    } catch (ClosedChannelException e) {
      throw timedOut.get()
          ? failed(
              name, "DEADLINE_EXCEEDED", "no answer within " + deadline.toMillis() + " ms", null)
          : failed(name, "UNAVAILABLE", "", e);
    } catch (AgentWire.MalformedException e) {
      throw failed(name, "INTERNAL", "unreadable answer", e);
    } catch (IOException e) {
      throw failed(name, "UNAVAILABLE", "", e);
    } finally {
      if (timer != null) {
        timer.interrupt();
      }
    }
    if (!reply.isOk()) {
      throw failed(name, reply.status(), reply.description(), null);
    }
    return reply;
  }

  /**
   * Closes the channel when the deadline passes, which ends a blocked connect, write or read with
   * an {@link ClosedChannelException}. (A Unix-domain {@code SocketChannel} has no socket timeout;
   * a thread is simpler than a selector for one call.)
   */
  private Thread deadline(SocketChannel ch, AtomicBoolean timedOut) {
    Thread t =
        new Thread(
            () -> {
              try {
                Thread.sleep(deadline.toMillis());
                timedOut.set(true);
                ch.close();
              } catch (InterruptedException | IOException done) {
                // interrupted: the call ended in time; a failed close leaves the read to fail
              }
            },
            "nodemesh-cni-deadline");
    t.setDaemon(true);
    t.start();
    return t;
  }

  private AgentException failed(
      String call, String status, String description, @Nullable Throwable cause) {
    // Status, description and the cause's message: a runtime logs this, a stack trace is noise.
    String msg =
        "node agent at "
            + socket
            + ": "
            + call
            + " failed: "
            + status
            + (description.isEmpty() ? "" : " " + description)
            + (cause == null
                ? ""
                : " (" + (cause.getMessage() == null ? cause : cause.getMessage()) + ")");
    return cause == null ? new AgentException(msg) : new AgentException(msg, cause);
  }

  @Override
  public void close() {
    // Nothing held between calls.
  }
}
