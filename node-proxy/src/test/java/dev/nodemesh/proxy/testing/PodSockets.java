package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.ConnectException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;

/**
 * Connected sockets that belong to a pod's cgroup but are read and written by this JVM: what the
 * end-to-end suite needs in eBPF mode, where a cgroup hook only sees sockets created by a process
 * inside the attached cgroup, and the test JVM must never join a test cgroup.
 *
 * <p>A small python process runs inside the pod's netns and the test cgroup. Asked to connect, it
 * creates the socket (so the socket's cgroup is the test cgroup and connect4 runs for it),
 * connects, and prints the fd number; this JVM takes a duplicate with {@code pidfd_getfd} and the
 * helper closes its own copy, so the connection then lives in this JVM only. The test reads and
 * writes it through {@link Conn}, the same interface that wraps a plain {@link SocketChannel} in
 * iptables mode.
 */
public final class PodSockets implements Closeable {
  private static final String HELPER =
      "import socket,sys\n"
          + "held={}\n"
          + "for line in sys.stdin:\n"
          + "  f=line.split()\n"
          + "  if f[0]=='c':\n"
          + "    s=socket.socket(socket.AF_INET6 if ':' in f[1] else socket.AF_INET); s.settimeout(15)\n"
          + "    try:\n"
          + "      s.connect((f[1],int(f[2])))\n"
          + "    except socket.timeout:\n"
          + "      s.close(); print('err 110 timed out', flush=True); continue\n"
          + "    except OSError as e:\n"
          + "      s.close(); print('err', e.errno or 0, e.strerror, flush=True); continue\n"
          + "    s.settimeout(None)\n" // blocking again: the JVM shares this file description
          + "    held[s.fileno()]=s; print('fd', s.fileno(), flush=True)\n"
          + "  elif f[0]=='x':\n"
          + "    held.pop(int(f[1])).close(); print('ok', flush=True)\n";

  private final Process helper;
  private final BufferedReader out;
  private final Writer in;

  private PodSockets(Process helper) {
    this.helper = helper;
    this.out =
        new BufferedReader(new InputStreamReader(helper.getInputStream(), StandardCharsets.UTF_8));
    this.in = new OutputStreamWriter(helper.getOutputStream(), StandardCharsets.UTF_8);
  }

  /** Starts the helper in {@code pod}'s netns, inside {@code cgroup} from its first instruction. */
  public static PodSockets start(TestNetns pod, TestCgroup cgroup) throws IOException {
    return start(pod, cgroup.path());
  }

  /** As above, for a cgroup known by its path (a node's eBPF mode, see {@link TestNode}). */
  public static PodSockets start(TestNetns pod, java.nio.file.Path cgroup) throws IOException {
    Process p =
        new ProcessBuilder(
                List.of(
                    "sh",
                    "-c",
                    "echo $$ > "
                        + cgroup.resolve("cgroup.procs")
                        + " && exec ip netns exec "
                        + pod.name()
                        + " \"$@\"",
                    "sh",
                    "/usr/bin/python3",
                    "-u",
                    "-c",
                    HELPER))
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    return new PodSockets(p);
  }

  /**
   * Connects from the pod; refused → {@link ConnectException}, other errors {@link
   * SocketException}.
   */
  public synchronized Conn connect(String ip, int port) throws IOException {
    String reply = ask("c " + ip + " " + port);
    if (reply.startsWith("err ")) {
      String[] f = reply.split(" ", 3);
      String what = "connect " + ip + ":" + port + " from the pod: " + (f.length > 2 ? f[2] : "");
      throw f[1].equals("111") ? new ConnectException(what) : new SocketException(what);
    }
    int remote = Integer.parseInt(reply.substring(3));
    int fd = Fds.take(helper.pid(), remote);
    String ok = ask("x " + remote);
    if (!ok.equals("ok")) {
      Fds.C.close(fd);
      throw new IOException("helper did not let go of fd " + remote + ": " + ok);
    }
    return new FdConn(fd);
  }

  private String ask(String line) throws IOException {
    in.write(line + "\n");
    in.flush();
    String reply = out.readLine();
    if (reply == null) {
      throw new IOException("pod socket helper exited");
    }
    return reply;
  }

  @Override
  public void close() {
    helper.destroyForcibly();
    try {
      helper.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** A connected client socket as the tests use it, whichever way it was made. */
  public interface Conn extends ByteChannel {
    void shutdownOutput() throws IOException;

    void setReceiveBufferSize(int bytes) throws IOException;

    /**
     * Bounds each later read: one that gets nothing within {@code timeout} throws {@link
     * SocketTimeoutException}; zero waits for ever.
     */
    void setReadTimeout(Duration timeout) throws IOException;

    /**
     * Closes with a reset instead of a FIN ({@code SO_LINGER} 0), as the socket of a client that
     * was killed or gave up looks to its peer.
     */
    void closeWithReset() throws IOException;

    static Conn of(SocketChannel ch) {
      return new Conn() {
        // A blocking channel's own read ignores SO_TIMEOUT; its socket's stream honours it.
        private volatile boolean timed;

        @Override
        public int read(ByteBuffer dst) throws IOException {
          if (!timed) {
            return ch.read(dst);
          }
          byte[] buf = new byte[dst.remaining()];
          int n = ch.socket().getInputStream().read(buf);
          if (n > 0) {
            dst.put(buf, 0, n);
          }
          return n;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
          return ch.write(src);
        }

        @Override
        public boolean isOpen() {
          return ch.isOpen();
        }

        @Override
        public void close() throws IOException {
          ch.close();
        }

        @Override
        public void shutdownOutput() throws IOException {
          ch.shutdownOutput();
        }

        @Override
        public void setReceiveBufferSize(int bytes) throws IOException {
          ch.socket().setReceiveBufferSize(bytes);
        }

        @Override
        public void setReadTimeout(Duration timeout) throws IOException {
          ch.socket().setSoTimeout((int) timeout.toMillis());
          timed = true;
        }

        @Override
        public void closeWithReset() throws IOException {
          ch.socket().setSoLinger(true, 0);
          ch.close();
        }
      };
    }
  }

  /**
   * A blocking socket fd read and written through libc, with 60 s send and receive timeouts (the
   * receive one changed by {@link #setReadTimeout}).
   */
  private static final class FdConn implements Conn {
    private static final int SOL_SOCKET = 1;
    private static final int SO_RCVBUF = 8;
    private static final int SO_LINGER = 13;
    private static final int SO_RCVTIMEO = 20;
    private static final int SO_SNDTIMEO = 21;
    private static final int EINTR = 4;
    private static final int EAGAIN = 11;

    private final int fd;
    private volatile boolean open = true;

    FdConn(int fd) throws IOException {
      this.fd = fd;
      byte[] tv = timeval(Duration.ofSeconds(60));
      setsockopt(SO_RCVTIMEO, tv);
      setsockopt(SO_SNDTIMEO, tv);
    }

    private static byte[] timeval(Duration d) {
      return ByteBuffer.allocate(16)
          .order(ByteOrder.nativeOrder())
          .putLong(d.toSeconds())
          .putLong(d.toNanosPart() / 1_000)
          .array();
    }

    private void setsockopt(int name, byte[] value) throws IOException {
      if (Fds.C.setsockopt(fd, SOL_SOCKET, name, value, value.length) != 0) {
        throw new SocketException("setsockopt(" + name + "): errno " + Fds.errno());
      }
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      byte[] buf = new byte[Math.min(dst.remaining(), 256 * 1024)];
      while (true) {
        long n = Fds.C.read(fd, buf, buf.length);
        if (n > 0) {
          dst.put(buf, 0, (int) n);
          return (int) n;
        }
        if (n == 0) {
          return buf.length == 0 ? 0 : -1;
        }
        int errno = Fds.errno();
        if (errno == EINTR) {
          continue;
        }
        if (errno == EAGAIN) {
          throw new SocketTimeoutException("read timed out");
        }
        throw new SocketException("read: " + Fds.describe(errno));
      }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      byte[] buf = new byte[Math.min(src.remaining(), 256 * 1024)];
      src.duplicate().get(buf);
      while (true) {
        long n = Fds.C.write(fd, buf, buf.length);
        if (n >= 0) {
          src.position(src.position() + (int) n);
          return (int) n;
        }
        int errno = Fds.errno();
        if (errno == EINTR) {
          continue;
        }
        throw new SocketException("write: " + Fds.describe(errno));
      }
    }

    @Override
    public void shutdownOutput() throws IOException {
      if (Fds.C.shutdown(fd, 1 /* SHUT_WR */) != 0) {
        throw new SocketException("shutdown: errno " + Fds.errno());
      }
    }

    @Override
    public void setReceiveBufferSize(int bytes) throws IOException {
      setsockopt(
          SO_RCVBUF, ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(bytes).array());
    }

    @Override
    public void setReadTimeout(Duration timeout) throws IOException {
      setsockopt(SO_RCVTIMEO, timeval(timeout));
    }

    @Override
    public void closeWithReset() throws IOException {
      try { // struct linger {l_onoff 1, l_linger 0}
        setsockopt(
            SO_LINGER,
            ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putInt(1).putInt(0).array());
      } finally {
        close();
      }
    }

    @Override
    public boolean isOpen() {
      return open;
    }

    @Override
    public void close() {
      if (open) {
        open = false;
        // A thread blocked in read(2) holds the socket, so close(2) alone would neither wake it
        // nor end the connection (a SocketChannel's close does both). SHUT_RD wakes it (it reads
        // the end) and sends nothing: the close still sends the FIN, or the reset for unread data.
        Fds.C.shutdown(fd, 0 /* SHUT_RD */);
        Fds.C.close(fd);
      }
    }
  }

  /** The libc calls only this helper needs. */
  public interface TestLibC {
    @SaveError
    long syscall(long number, long a, long b, long c);

    @SaveError
    long read(int fd, @Out byte[] buf, long count);

    @SaveError
    long write(int fd, @In byte[] buf, long count);

    @SaveError
    int shutdown(int fd, int how);

    @SaveError
    int setsockopt(int fd, int level, int optname, @In byte[] optval, int optlen);

    @SaveError
    int close(int fd);
  }

  private static final class Fds {
    static final TestLibC C = LibraryLoader.create(TestLibC.class).load("c");
    private static final long PIDFD_OPEN = 434;
    private static final long PIDFD_GETFD = 438;

    static int errno() {
      return jnr.ffi.Runtime.getRuntime(C).getLastError();
    }

    /** The errno with the words a JDK socket would use for it, so tests read one message. */
    static String describe(int errno) {
      return switch (errno) {
        case 104 -> "Connection reset by peer (errno 104)";
        case 32 -> "Broken pipe (errno 32)";
        default -> "errno " + errno;
      };
    }

    static int take(long pid, int fd) throws IOException {
      int pidfd = (int) C.syscall(PIDFD_OPEN, pid, 0, 0);
      if (pidfd < 0) {
        throw new IOException("pidfd_open(" + pid + "): errno " + errno());
      }
      try {
        int mine = (int) C.syscall(PIDFD_GETFD, pidfd, fd, 0);
        if (mine < 0) {
          throw new IOException("pidfd_getfd(" + pid + ", " + fd + "): errno " + errno());
        }
        return mine;
      } finally {
        C.close(pidfd);
      }
    }
  }
}
