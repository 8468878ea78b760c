package dev.nodemesh.bpf.loader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.socket.SocketOptions;
import dev.nodemesh.bpf.testing.Cleanup;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The programs end to end: a "pod" is a test netns plus a test cgroup; its processes (curl, python)
 * join the cgroup before they connect; the proxy's outbound listener is a Java socket made inside
 * the netns on 127.0.0.1:15001. Nothing is attached outside the test's own cgroup, and every
 * cgroup, pin, netns and process is removed after each test.
 */
@RootTest
class InterceptionProgramsRootTest {
  private static final String SERVICE = "10.97.0.10";
  private static final String PYTHON = "/usr/bin/python3";

  private final Cleanup cleanup = new Cleanup();
  private TestNetns pod;
  private TestCgroup cgroup;
  private Path pins;
  private long cookie;
  private final InstalledPrograms programs = new InstalledPrograms();

  @BeforeEach
  void setUp() throws IOException {
    pod = cleanup.add(TestNetns.create("bpf"));
    cgroup = cleanup.add(TestCgroup.create("bpf"));
    pins = cleanup.add(TestBpffs.mount()).path().resolve("nodemesh");
    cleanup.add(programs);
    programs.set(InterceptionPrograms.install(cgroup.path(), pins));
    try (NetworkNamespace ns = NetworkNamespace.open(pod.path())) {
      cookie = ns.cookie();
    }
    current().register(cookie, PodConfig.defaults());
  }

  @AfterEach
  void tearDown() throws Exception {
    cleanup.close();
  }

  private InterceptionPrograms current() {
    return programs.current();
  }

  @Test
  void aRegisteredPodsConnectLandsOnTheListenerWithItsOriginalDestination() throws Exception {
    Listener outbound = listen(pod, 15001);
    assertEquals("ok", curlInPod(pod, "http://" + SERVICE + "/"));
    Accepted a = outbound.accepted.poll(5, TimeUnit.SECONDS);
    assertTrue(a != null, "nothing reached 127.0.0.1:15001");
    assertEquals(Optional.of(new InetSocketAddress(SERVICE, 80)), a.original);
    assertEquals(cookie, a.netnsCookie);
  }

  @Test
  void getsockoptAnswersSoOriginalDstOnTheAcceptedSocket() throws Exception {
    // The getsockopt program runs for sockets of the cgroup it is attached to, and an accepted
    // socket belongs to its listener's cgroup: so the listener is made by a process in the test
    // cgroup, and this JVM takes its fd (pidfd_getfd) to accept on it like the proxy would.
    Process holder =
        inPod(
            pod,
            PYTHON,
            "-c",
            "import socket,time\n"
                + "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                + "s.bind(('127.0.0.1',15001)); s.listen(16); print(s.fileno(), flush=True)\n"
                + "time.sleep(120)\n");
    int remoteFd = Integer.parseInt(firstLine(holder));
    int listener = Fds.take(holder.pid(), remoteFd);
    try {
      Process curl = inPod(pod, "curl", "-s", "--max-time", "5", "http://" + SERVICE + ":8080/x");
      int conn = Fds.accept(listener, 5000);
      try {
        assertEquals(new InetSocketAddress(SERVICE, 8080), SocketOptions.originalDestination(conn));
      } finally {
        Fds.close(conn);
      }
      curl.waitFor(10, TimeUnit.SECONDS);
    } finally {
      Fds.close(listener);
    }
  }

  @Test
  void getsockoptAnswersIp6tSoOriginalDstForNativeIpv6() throws Exception {
    // As above, for a pod registered with NM_POD_IPV6: connect6 sends a native IPv6 connect to
    // [::1]:15001, and getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) on the accepted socket answers
    // from the IPv6 record (SOL_IP has nothing for it).
    current().register(cookie, PodConfig.defaults().withFlags(PodConfig.IPV6));
    Process holder =
        inPod(
            pod,
            PYTHON,
            "-c",
            "import socket,time\n"
                + "s=socket.socket(socket.AF_INET6)\n"
                + "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                + "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
                + "s.bind(('::1',15001)); s.listen(16); print(s.fileno(), flush=True)\n"
                + "time.sleep(120)\n");
    int remoteFd = Integer.parseInt(firstLine(holder));
    int listener = Fds.take(holder.pid(), remoteFd);
    try {
      Process curl = inPod(pod, "curl", "-s", "--max-time", "5", "http://[fd00:97::10]:8080/x");
      int conn = Fds.accept(listener, 5000);
      try {
        assertEquals(
            new InetSocketAddress("fd00:97::10", 8080),
            SocketOptions.originalDestination(conn, true));
        // The IPv4-first order finds the same answer after SOL_IP comes back empty.
        assertEquals(
            new InetSocketAddress("fd00:97::10", 8080), SocketOptions.originalDestination(conn));
      } finally {
        Fds.close(conn);
      }
      curl.waitFor(10, TimeUnit.SECONDS);
    } finally {
      Fds.close(listener);
    }
  }

  @Test
  void anUnregisteredNamespaceIsUntouched() throws Exception {
    TestNetns other = TestNetns.create("bpfu");
    cleanup.add(other);
    Listener outbound = listen(other, 15001);
    Process curl = inPod(other, "curl", "-s", "--max-time", "3", "http://" + SERVICE + "/");
    assertEquals(7, exit(curl), "curl should fail to connect: no route, no redirect");
    assertTrue(outbound.accepted.isEmpty());
    assertEquals(0, current().entries(InterceptionPrograms.ORIG_BY_COOKIE));

    assertTrue(current().unregister(cookie));
    Listener own = listen(pod, 15001);
    assertEquals(7, exit(inPod(pod, "curl", "-s", "--max-time", "3", "http://" + SERVICE + "/")));
    assertTrue(own.accepted.isEmpty(), "an unregistered pod must not be redirected");
  }

  @Test
  void loopbackAndTheProxysMarkedSocketsAreUntouched() throws Exception {
    Listener outbound = listen(pod, 15001);
    Listener local = listen(pod, 8080);
    assertEquals("ok", curlInPod(pod, "http://127.0.0.1:8080/"));
    assertTrue(local.accepted.poll(5, TimeUnit.SECONDS) != null);

    Process marked =
        inPod(
            pod,
            PYTHON,
            "-c",
            "import socket,sys\n"
                + "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, 36, 0x539); s.settimeout(3)\n"
                + "try:\n  s.connect(('"
                + SERVICE
                + "',80)); print('connected')\n"
                + "except OSError as e: print(e.errno)\n");
    String out = firstLine(marked);
    assertNotEquals("connected", out, "a socket with the proxy's mark was redirected");
    assertTrue(outbound.accepted.isEmpty());
    assertEquals(0, current().entries(InterceptionPrograms.ORIG_BY_COOKIE));
  }

  /**
   * 10,000 redirected connections, closed three ways in turn (the proxy's side first, the client
   * first, and a reset), leave both record maps empty: every record is deleted at the client's
   * TCP_CLOSE however it gets there, not evicted by the LRU (65,536 entries, so a leak of up to
   * 10,000 would show). Bounded: one client process, one connection at a time, on loopback.
   */
  @Test
  void tenThousandConnectionsClosedEveryWayLeaveNoRecords() throws Exception {
    Listener outbound = listen(pod, 15001);
    int n = 10_000;
    Process loop =
        inPod(
            pod,
            PYTHON,
            "-c",
            "import socket,struct\n"
                + "req=b'GET / HTTP/1.0\\r\\n\\r\\n'\n"
                + "for i in range("
                + n
                + "):\n"
                + "  s=socket.create_connection(('"
                + SERVICE
                + "',80), timeout=5); s.sendall(req)\n"
                + "  if i%3==0:\n" // the proxy closes first: the client ends in LAST_ACK -> CLOSE
                + "    while s.recv(256): pass\n"
                + "  elif i%3==1:\n" // the client closes first: FIN_WAIT -> TIME_WAIT
                + "    s.shutdown(socket.SHUT_WR)\n"
                + "    while s.recv(256): pass\n"
                + "  else:\n" // a reset once the reply is in
                + "    got=b''\n"
                + "    while not got.endswith(b'ok'):\n"
                + "      d=s.recv(256)\n"
                + "      if not d: break\n"
                + "      got+=d\n"
                + "    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii',1,0))\n"
                + "  s.close()\n"
                + "print('done', flush=True)\n");
    assertEquals("done", firstLine(loop, 120));
    assertEquals(0, exit(loop));
    awaitValue(n, outbound.count::get, "connections that reached the listener");
    assertEquals(n, outbound.found.get(), "every accepted connection had its record");
    awaitValue(0, () -> entries(InterceptionPrograms.ORIG_BY_PEER), "records left by peer");
    assertEquals(0, current().entries(InterceptionPrograms.ORIG_BY_COOKIE), "records by cookie");
  }

  /**
   * Connects that never get established leave no record: refused (nothing listens on 15001, so
   * loopback answers the SYN with a reset), closed while the SYN goes unanswered (a DROP rule on
   * the pod's loopback for 15001), disconnected in SYN_SENT ({@code connect(AF_UNSPEC)}), and timed
   * out by the kernel ({@code TCP_SYNCNT} 1), over IPv4, a dual-stack socket to a v4-mapped address
   * and native IPv6 (the pod registered with {@link PodConfig#IPV6}). None reaches ESTABLISHED, so
   * sockops' re-keying never runs: the records must go at the client's TCP_CLOSE, not wait for the
   * LRU (65,536 entries: thousands left behind would show). Every map ends at its starting count.
   * Every connect must have been redirected: without the redirect the service address has no route
   * in the pod (ENETUNREACH), which the counts below would show.
   */
  @Test
  void connectsThatNeverCompleteLeaveNoRecords() throws Exception {
    current().register(cookie, PodConfig.defaults().withFlags(PodConfig.IPV6));
    List<String> maps =
        List.of(
            InterceptionPrograms.POD_NETNS,
            InterceptionPrograms.ORIG_BY_COOKIE,
            InterceptionPrograms.ORIG_BY_PEER,
            InterceptionPrograms.ORIG6_BY_COOKIE,
            InterceptionPrograms.ORIG6_BY_PEER,
            InterceptionPrograms.INBOUND_PODS,
            InterceptionPrograms.INBOUND_LISTENER);
    java.util.Map<String, Integer> before = new java.util.LinkedHashMap<>();
    for (String m : maps) {
      before.put(m, entries(m));
    }
    String common =
        "import socket,errno,select,ctypes\n"
            + "res={}\n"
            + "def note(k): res[k]=res.get(k,0)+1\n"
            + "def err(e): return errno.errorcode.get(e, str(e))\n"
            + "targets=[(socket.AF_INET,('"
            + SERVICE
            + "',80)),(socket.AF_INET6,('::ffff:"
            + SERVICE
            + "',80)),(socket.AF_INET6,('fd00::10',80))]\n";
    // Refused: a blocking connect that the reset ends.
    Process refused =
        inPod(
            pod,
            PYTHON,
            "-c",
            common
                + "for i in range(3000):\n"
                + "  fam,addr=targets[i%3]\n"
                + "  s=socket.socket(fam, socket.SOCK_STREAM)\n"
                + "  try:\n"
                + "    s.connect(addr); note('connected')\n"
                + "  except OSError as e: note(err(e.errno))\n"
                + "  s.close()\n"
                + "print(sorted(res.items()), flush=True)\n");
    assertEquals("[('ECONNREFUSED', 3000)]", firstLine(refused, 120));
    assertEquals(0, exit(refused));
    for (String m : maps) {
      awaitValue(before.get(m), () -> entries(m), m + " after refused connects");
    }

    // Blackholed: the SYN to the proxy port is dropped, so the client stays in SYN_SENT.
    pod.exec("iptables", "-A", "INPUT", "-i", "lo", "-p", "tcp", "--dport", "15001", "-j", "DROP");
    pod.exec("ip6tables", "-A", "INPUT", "-i", "lo", "-p", "tcp", "--dport", "15001", "-j", "DROP");
    Process blackholed =
        inPod(
            pod,
            PYTHON,
            "-c",
            common
                + "libc=ctypes.CDLL(None, use_errno=True)\n"
                + "unspec=ctypes.create_string_buffer(28)\n" // all zero: AF_UNSPEC
                + "def start(i):\n"
                + "  fam,addr=targets[i%3]\n"
                + "  s=socket.socket(fam, socket.SOCK_STREAM); s.setblocking(False)\n"
                + "  e=s.connect_ex(addr)\n"
                + "  note(err(e)); return s\n"
                + "for i in range(3000):\n" // closed in SYN_SENT
                + "  start(i).close()\n"
                + "for i in range(300):\n" // disconnected in SYN_SENT, then closed
                + "  s=start(i)\n"
                + "  if libc.connect(s.fileno(), unspec, 28) != 0: note('disconnect failed')\n"
                + "  s.close()\n"
                + "waiting=[]\n"
                + "for i in range(30):\n" // the kernel gives up after the SYN and one retry
                + "  fam,addr=targets[i%3]\n"
                + "  s=socket.socket(fam, socket.SOCK_STREAM); s.setblocking(False)\n"
                + "  s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)\n"
                + "  note(err(s.connect_ex(addr))); waiting.append(s)\n"
                + "for s in waiting:\n"
                + "  select.select([], [s], [], 30)\n"
                + "  note('then ' + err(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))\n"
                + "  s.close()\n"
                + "print(sorted(res.items()), flush=True)\n");
    assertEquals("[('EINPROGRESS', 3330), ('then ETIMEDOUT', 30)]", firstLine(blackholed, 120));
    assertEquals(0, exit(blackholed));
    for (String m : maps) {
      awaitValue(before.get(m), () -> entries(m), m + " after connects that got no answer");
    }
  }

  /**
   * The loader restarted five times (handles closed, the pinned links adopted by a new load) while
   * a pod process opens new connections all the time: every connection lands on the outbound
   * listener, none fails, none reaches the destination directly. The destination is reachable
   * directly (the pod's loopback holds the service IP, with a listener on it), so a moment without
   * the program would show as a connection to that listener.
   */
  @Test
  void restartingTheLoaderUnderConstantNewConnectionsLetsNoneEscape() throws Exception {
    pod.exec("ip", "addr", "add", SERVICE + "/32", "dev", "lo");
    Listener outbound = listen(pod, 15001);
    Listener direct = listen(pod, SERVICE, 80);
    Path stop = Files.createTempFile(TestNetns.runPrefix(), "stop");
    Files.delete(stop);
    cleanup.add(() -> Files.deleteIfExists(stop));
    Process loop =
        inPod(
            pod,
            PYTHON,
            "-c",
            "import socket,os\n"
                + "ok=0; err=[]\n"
                + "for i in range(20000):\n"
                + "  if os.path.exists('"
                + stop
                + "'): break\n"
                + "  try:\n"
                + "    s=socket.create_connection(('"
                + SERVICE
                + "',80), timeout=5); s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
                + "    while s.recv(256): pass\n"
                + "    s.close(); ok+=1\n"
                + "  except OSError as e:\n"
                + "    err.append(str(e))\n"
                + "print(ok, len(err), err[:3], flush=True)\n");
    awaitValue(true, () -> outbound.count.get() >= 100, "first connections");
    for (int i = 0; i < 5; i++) {
      int before = outbound.count.get();
      current().close();
      programs.clear();
      InterceptionPrograms again = InterceptionPrograms.install(cgroup.path(), pins);
      programs.set(again);
      assertTrue(again.adopted());
      awaitValue(true, () -> outbound.count.get() >= before + 100, "connections after restart");
    }
    Files.createFile(stop);
    String[] summary = firstLine(loop, 60).split(" ", 3);
    assertEquals(0, exit(loop));
    assertEquals("0", summary[1], "failed connections: " + summary[2]);
    assertEquals(0, direct.count.get(), "connections escaped to the destination directly");
    int ok = Integer.parseInt(summary[0]);
    awaitValue(ok, outbound.count::get, "connections that reached the outbound listener");
  }

  @Test
  void aRestartedLoaderAdoptsThePinnedProgramsAndMaps() throws Exception {
    Listener outbound = listen(pod, 15001);
    InterceptionPrograms closed = current();
    closed.close();
    programs.clear();
    // A lookup racing the close gets an exception, never a freed libbpf object or a reused fd.
    assertThrows(IllegalStateException.class, () -> closed.registration(cookie));
    assertThrows(
        IllegalStateException.class,
        () -> closed.originalDestination(cookie, new InetSocketAddress("10.0.0.1", 1)));
    // No loader running: the pinned links keep the programs attached.
    assertEquals("ok", curlInPod(pod, "http://" + SERVICE + "/"));
    assertTrue(outbound.accepted.poll(5, TimeUnit.SECONDS) != null);

    InterceptionPrograms again = InterceptionPrograms.install(cgroup.path(), pins);
    programs.set(again);
    assertTrue(again.adopted());
    assertEquals(Optional.of(PodConfig.defaults()), again.registration(cookie), "map was reused");
    assertEquals("ok", curlInPod(pod, "http://" + SERVICE + "/"));
    Accepted a = outbound.accepted.poll(5, TimeUnit.SECONDS);
    assertTrue(a != null);
    assertEquals(Optional.of(new InetSocketAddress(SERVICE, 80)), a.original);

    again.uninstall();
    programs.clear();
    assertFalse(Files.exists(pins));
    assertEquals(7, exit(inPod(pod, "curl", "-s", "--max-time", "3", "http://" + SERVICE + "/")));
    assertTrue(outbound.accepted.isEmpty(), "still redirected after uninstall");
  }

  /**
   * A loader that adopts the pins and is closed, or uninstalls, gives back every file descriptor it
   * opened (links, programs, maps): a proxy that restarts its loader in-process must not grow.
   * Counted in /proc/self/fd after a warm-up round (class loading opens jars once).
   */
  @Test
  void closeAndUninstallReleaseEveryFileDescriptor() throws Exception {
    current().close();
    programs.clear();
    InterceptionPrograms.install(cgroup.path(), pins).close();
    long before = openFds();
    for (int i = 0; i < 3; i++) {
      InterceptionPrograms again = InterceptionPrograms.install(cgroup.path(), pins);
      assertTrue(again.adopted());
      again.close();
    }
    assertEquals(before, openFds(), "fds after three adopt + close rounds");
    InterceptionPrograms last = InterceptionPrograms.install(cgroup.path(), pins);
    last.uninstall();
    assertFalse(Files.exists(pins));
    assertEquals(before, openFds(), "fds after adopt + uninstall");
  }

  /**
   * An install that fails after the object loaded (the attach target is a plain directory, not a
   * cgroup) closes what it opened and removes the pins it made.
   */
  @Test
  void aFailedInstallReleasesEveryFileDescriptorAndPin() throws Exception {
    Path notACgroup = Files.createTempDirectory(TestNetns.runPrefix());
    cleanup.add(() -> Files.deleteIfExists(notACgroup));
    Path otherPins = pins.resolveSibling("failed");
    cleanup.add(() -> Files.deleteIfExists(otherPins));
    org.junit.jupiter.api.Assertions.assertThrows(
        IOException.class, () -> InterceptionPrograms.install(notACgroup, otherPins));
    long before = openFds();
    for (int i = 0; i < 3; i++) {
      org.junit.jupiter.api.Assertions.assertThrows(
          IOException.class, () -> InterceptionPrograms.install(notACgroup, otherPins));
    }
    assertEquals(before, openFds(), "fds after three failed installs");
    try (var left = Files.list(otherPins)) {
      assertEquals(List.of(), left.toList(), "pins left by failed installs");
    }
  }

  private static long openFds() throws IOException {
    try (var fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }

  // ---- helpers

  private record Accepted(
      InetSocketAddress peer, Optional<InetSocketAddress> original, long netnsCookie) {}

  /** A Java listener inside a test netns answering one tiny HTTP response per connection. */
  private final class Listener {
    final BlockingQueue<Accepted> accepted = new LinkedBlockingQueue<>();
    final AtomicInteger count = new AtomicInteger();
    final AtomicInteger found = new AtomicInteger();
  }

  private Listener listen(TestNetns ns, int port) throws IOException {
    return listen(ns, "127.0.0.1", port);
  }

  private Listener listen(TestNetns ns, String address, int port) throws IOException {
    ServerSocketChannel server;
    long nsCookie;
    try (NetworkNamespace handle = NetworkNamespace.open(ns.path());
        NetworkNamespace.Scope in = handle.enter()) {
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress(address, port), 256);
      nsCookie = handle.cookie();
    }
    cleanup.add(server);
    Listener l = new Listener();
    Thread t =
        new Thread(
            () -> {
              ByteBuffer response =
                  ByteBuffer.wrap(
                      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
                          .getBytes(StandardCharsets.US_ASCII));
              while (server.isOpen()) {
                try (SocketChannel c = server.accept()) {
                  InetSocketAddress peer = (InetSocketAddress) c.getRemoteAddress();
                  // The request first: closing with it unread would reset the client.
                  c.read(ByteBuffer.allocate(1024));
                  Optional<InetSocketAddress> original = Optional.empty();
                  InterceptionPrograms p = programs.orNull();
                  if (p != null) {
                    try {
                      original = p.originalDestination(nsCookie, peer);
                    } catch (IOException | RuntimeException e) {
                      // the restart test closes the loader while this runs: no record, not a
                      // failed connection
                    }
                  }
                  l.count.incrementAndGet();
                  if (original.isPresent()) {
                    l.found.incrementAndGet();
                  }
                  l.accepted.add(new Accepted(peer, original, nsCookie));
                  c.write(response.duplicate());
                } catch (IOException e) {
                  // closed by the test, or a client gone early: keep serving while open
                }
              }
            },
            "listener-" + ns.name() + "-" + port);
    t.setDaemon(true);
    t.start();
    return l;
  }

  /**
   * Starts a command inside the netns, in the test cgroup from its first instruction. The shell
   * joins the cgroup before {@code ip netns exec}, which remounts /sys for the namespace.
   */
  private Process inPod(TestNetns ns, String... cmd) throws IOException {
    List<String> full =
        new ArrayList<>(
            List.of(
                "sh", "-c", cgroup.joinCommand() + "ip netns exec " + ns.name() + " \"$@\"", "sh"));
    full.addAll(List.of(cmd));
    Process p = new ProcessBuilder(full).redirectErrorStream(true).start();
    cleanup.add(p);
    return p;
  }

  private String curlInPod(TestNetns ns, String url) throws Exception {
    Process p = inPod(ns, "curl", "-s", "--max-time", "5", url);
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, exit(p), "curl " + url + ": " + out);
    return out;
  }

  private static int exit(Process p) throws InterruptedException {
    if (!p.waitFor(30, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("process did not finish");
    }
    return p.exitValue();
  }

  private int entries(String map) {
    try {
      return current().entries(map);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Polls (every 50 ms, up to 30 s) until {@code actual} equals {@code expected}. */
  private static <T> void awaitValue(T expected, java.util.function.Supplier<T> actual, String what)
      throws InterruptedException {
    T last = actual.get();
    for (int i = 0; i < 600 && !expected.equals(last); i++) {
      Thread.sleep(50);
      last = actual.get();
    }
    assertEquals(expected, last, what);
  }

  private static String firstLine(Process p, int timeoutSeconds) throws Exception {
    java.util.concurrent.CompletableFuture<String> line =
        java.util.concurrent.CompletableFuture.supplyAsync(
            () -> {
              try {
                return firstLine(p);
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
    try {
      return line.get(timeoutSeconds, TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      p.destroyForcibly();
      throw new AssertionError("no output within " + timeoutSeconds + " s", e);
    }
  }

  private static String firstLine(Process p) throws IOException {
    BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    String line = r.readLine();
    if (line == null) {
      throw new IOException("process ended without output");
    }
    return line.strip();
  }

  /** The few syscalls only this test needs: take another process's fd, accept with a timeout. */
  public interface TestLibC {
    long syscall(long number, long a, long b, long c);

    int accept(int fd, @Nullable Pointer addr, @Nullable Pointer len);

    int poll(Pointer fds, long nfds, int timeoutMillis);

    int close(int fd);
  }

  private static final class Fds {
    private static final TestLibC C = LibraryLoader.create(TestLibC.class).load("c");
    private static final long PIDFD_OPEN = 434;
    private static final long PIDFD_GETFD = 438;

    static int take(long pid, int fd) throws IOException {
      int pidfd = (int) C.syscall(PIDFD_OPEN, pid, 0, 0);
      if (pidfd < 0) {
        throw new IOException("pidfd_open(" + pid + ") failed");
      }
      try {
        int mine = (int) C.syscall(PIDFD_GETFD, pidfd, fd, 0);
        if (mine < 0) {
          throw new IOException("pidfd_getfd(" + pid + ", " + fd + ") failed");
        }
        return mine;
      } finally {
        C.close(pidfd);
      }
    }

    static int accept(int listener, int timeoutMillis) throws IOException {
      Pointer pfd = Memory.allocateDirect(jnr.ffi.Runtime.getRuntime(C), 8, true);
      pfd.putInt(0, listener);
      pfd.putShort(4, (short) 1); // POLLIN
      if (C.poll(pfd, 1, timeoutMillis) != 1) {
        throw new IOException("no connection reached the listener within " + timeoutMillis + " ms");
      }
      int fd = C.accept(listener, null, null);
      if (fd < 0) {
        throw new IOException("accept failed");
      }
      return fd;
    }

    static void close(int fd) {
      C.close(fd);
    }
  }
}
