package dev.nodemesh.bpf.loader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.maps.InboundConfig;
import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.Cleanup;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import jnr.ffi.LibraryLoader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Inbound capture (sk_lookup) and connect6, against real namespaces: a "pod" netns and a "client"
 * netns joined by a veth pair made inside them (nothing in the root namespace). The pod's app and
 * the proxy's inbound listener are python processes that answer each connection with their name and
 * the accepted socket's local address; the listener's fd is taken into this JVM (pidfd_getfd) to
 * register it, as the proxy registers its own listener's fd.
 */
@RootTest
class InboundCaptureRootTest {
  private static final String POD_IP = "10.251.0.2";
  private static final String CLIENT_IP = "10.251.0.1";
  private static final String PYTHON = "/usr/bin/python3";
  private static final String SERVER =
      "import socket,sys\n"
          + "name=sys.argv[1]; host=sys.argv[2]; port=int(sys.argv[3])\n"
          + "s=socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n"
          + "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          + "s.bind((host,port)); s.listen(64); print(s.fileno(), flush=True)\n"
          + "while True:\n"
          + "  c,p=s.accept(); l=c.getsockname()\n"
          + "  c.sendall(('%s %s:%d %s:%d\\n'%(name,l[0],l[1],p[0],p[1])).encode())\n"
          + "  c.recv(16); c.close()\n";
  private static final String CLIENT =
      "import socket,sys\n"
          + "fam=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
          + "s=socket.socket(fam); s.settimeout(3)\n"
          + "try:\n"
          + "  s.connect((sys.argv[1],int(sys.argv[2])))\n"
          + "  print(s.makefile().readline().strip(), flush=True)\n"
          + "  sys.stdin.readline()\n"
          + "except OSError as e:\n"
          + "  print('error', e, flush=True)\n";

  private final Cleanup cleanup = new Cleanup();
  private final List<Integer> fds = new ArrayList<>();
  private TestNetns pod;
  private TestNetns client;
  private TestCgroup cgroup;
  private Path pins;
  private long cookie;
  private final InstalledPrograms programs = new InstalledPrograms();

  @BeforeEach
  void setUp() throws IOException {
    pod = cleanup.add(TestNetns.create("inp"));
    client = cleanup.add(TestNetns.create("inc"));
    pod.exec(
        "ip",
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        client.name());
    pod.exec("ip", "addr", "add", POD_IP + "/24", "dev", "eth0");
    pod.exec("ip", "link", "set", "eth0", "up");
    client.exec("ip", "addr", "add", CLIENT_IP + "/24", "dev", "eth0");
    client.exec("ip", "link", "set", "eth0", "up");
    cgroup = cleanup.add(TestCgroup.create("inb"));
    pins = cleanup.add(TestBpffs.mount()).path().resolve("nodemesh");
    cleanup.add(programs);
    cleanup.add(() -> fds.forEach(Fds.C::close));
    programs.set(InterceptionPrograms.install(cgroup.path(), pins));
    try (NetworkNamespace ns = NetworkNamespace.open(pod.path())) {
      cookie = ns.cookie();
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    cleanup.close();
  }

  private InterceptionPrograms current() {
    return programs.current();
  }

  @Test
  void aConnectionFromAnotherNamespaceReachesTheInboundListenerWithItsOriginalDestination()
      throws Exception {
    serve(pod, "app", "0.0.0.0", 8080);
    assertEquals("app " + POD_IP + ":8080", answer(client, POD_IP, 8080), "before registering");
    registerInbound(InboundConfig.defaults());
    assertTrue(current().inboundAttached(cookie));
    assertEquals(
        Optional.of(InboundConfig.defaults()),
        current().inboundRegistration(InetAddress.getByName(POD_IP)));
    // The accepted socket's local address is where the client meant to go: no rewrite happened.
    assertEquals("proxy " + POD_IP + ":8080", answer(client, POD_IP, 8080));
    assertEquals("proxy " + POD_IP + ":9999", answer(client, POD_IP, 9999), "any port");
  }

  @Test
  void hboneExcludedPortsLoopbackAndThePodsOwnTrafficAreUntouched() throws Exception {
    serve(pod, "app", "0.0.0.0", 8080);
    serve(pod, "hbone", "0.0.0.0", 15008);
    serve(pod, "metrics", "0.0.0.0", 9090);
    registerInbound(new InboundConfig(List.of(15008, 9090)));
    assertEquals("hbone " + POD_IP + ":15008", answer(client, POD_IP, 15008));
    assertEquals("metrics " + POD_IP + ":9090", answer(client, POD_IP, 9090));
    assertEquals("proxy " + POD_IP + ":8080", answer(client, POD_IP, 8080));
    // From inside the pod (how the proxy delivers to the app): loopback and the pod's own address.
    assertEquals("app " + POD_IP + ":8080", answer(pod, POD_IP, 8080));
    assertEquals("app 127.0.0.1:8080", answer(pod, "127.0.0.1", 8080));
  }

  @Test
  void anUnregisteredNamespaceIsUntouchedAndUnregisteringDetaches() throws Exception {
    serve(pod, "app", "0.0.0.0", 8080);
    serve(client, "clientapp", "0.0.0.0", 8080);
    registerInbound(InboundConfig.defaults());
    assertEquals("clientapp " + CLIENT_IP + ":8080", answer(pod, CLIENT_IP, 8080));
    assertEquals("proxy " + POD_IP + ":8080", answer(client, POD_IP, 8080));

    InetAddress ip = InetAddress.getByName(POD_IP);
    assertTrue(current().unregisterInbound(cookie, List.of(ip)));
    assertFalse(current().inboundAttached(cookie));
    assertEquals(Optional.empty(), current().inboundRegistration(ip));
    assertFalse(current().inboundListenerPresent(ip));
    assertEquals("app " + POD_IP + ":8080", answer(client, POD_IP, 8080), "after unregistering");
    assertFalse(current().unregisterInbound(cookie, List.of(ip)), "second unregister: nothing");
  }

  @Test
  void aRegisteredPodWhoseListenerIsGoneDropsInsteadOfBypassing() throws Exception {
    serve(pod, "app", "0.0.0.0", 8080);
    Process proxy = registerInbound(InboundConfig.defaults());
    InetAddress ip = InetAddress.getByName(POD_IP);
    assertTrue(current().inboundListenerPresent(ip));
    proxy.destroyForcibly();
    proxy.waitFor(10, TimeUnit.SECONDS);
    for (int fd : fds) {
      Fds.C.close(fd);
    }
    fds.clear();
    for (int i = 0; i < 50 && current().inboundListenerPresent(ip); i++) {
      Thread.sleep(100);
    }
    assertFalse(current().inboundListenerPresent(ip), "the kernel drops a closed socket");
    String out = answer(client, POD_IP, 8080);
    assertTrue(out.startsWith("error"), "must not reach the app around the proxy: " + out);
    // A new listener (the restarted proxy re-enrolling) takes over.
    registerInbound(InboundConfig.defaults());
    assertEquals("proxy " + POD_IP + ":8080", answer(client, POD_IP, 8080));
  }

  @Test
  void aRestartedLoaderAdoptsTheInboundLinkAndUninstallDetachesIt() throws Exception {
    serve(pod, "app", "0.0.0.0", 8080);
    registerInbound(InboundConfig.defaults());
    current().close();
    programs.clear();
    assertEquals("proxy " + POD_IP + ":8080", answer(client, POD_IP, 8080), "loader gone");
    InterceptionPrograms again = InterceptionPrograms.install(cgroup.path(), pins);
    programs.set(again);
    assertTrue(again.adopted());
    assertTrue(again.inboundAttached(cookie));
    assertEquals("proxy " + POD_IP + ":8080", answer(client, POD_IP, 8080), "adopted");
    again.uninstall();
    programs.clear();
    assertFalse(Files.exists(pins));
    assertEquals("app " + POD_IP + ":8080", answer(client, POD_IP, 8080), "after uninstall");
  }

  @Test
  void connect6RedirectsV4MappedDestinationsAndLeavesNativeIpv6Alone() throws Exception {
    current().register(cookie, PodConfig.defaults());
    serve(pod, "outbound", "127.0.0.1", 15001);
    Process c = inPodCgroup(pod, "::ffff:10.97.0.10", "80");
    String line = firstLine(c);
    String[] f = line.split(" ");
    assertEquals("outbound", f[0], line);
    assertEquals("127.0.0.1:15001", f[1], line);
    String[] peer = f[2].split(":");
    assertEquals(
        Optional.of(new InetSocketAddress("10.97.0.10", 80)),
        current()
            .originalDestination(
                cookie, new InetSocketAddress(peer[0], Integer.parseInt(peer[1]))));
    c.getOutputStream().close();
    c.waitFor(10, TimeUnit.SECONDS);

    String native6 = firstLine(inPodCgroup(pod, "fd00::10", "80"));
    assertTrue(native6.startsWith("error"), "native IPv6 is not redirected: " + native6);
    assertEquals(0, current().entries(InterceptionPrograms.ORIG_BY_COOKIE));
  }

  @Test
  void connect6SendsNativeIpv6ToTheIpv6ListenerWhenThePodHasOne() throws Exception {
    current().register(cookie, PodConfig.defaults().withFlags(PodConfig.IPV6));
    serve(pod, "outbound6", "::1", 15001);
    Process c = inPodCgroup(pod, "fd00::10", "8080");
    String line = firstLine(c);
    String[] f = line.split(" ");
    assertEquals("outbound6", f[0], line);
    assertEquals("::1:15001", f[1], line);
    int colon = f[2].lastIndexOf(':');
    InetSocketAddress peer =
        new InetSocketAddress(
            f[2].substring(0, colon), Integer.parseInt(f[2].substring(colon + 1)));
    assertEquals(
        Optional.of(new InetSocketAddress("fd00::10", 8080)),
        current().originalDestination(cookie, peer));
    assertEquals(1, current().entries(InterceptionPrograms.ORIG6_BY_PEER));
    c.getOutputStream().close();
    c.waitFor(10, TimeUnit.SECONDS);
    // Link-local and ::1 are never redirected; records go when the client socket closes.
    String link = firstLine(inPodCgroup(pod, "fe80::1%lo", "8080"));
    assertTrue(link.startsWith("error"), link);
    for (int i = 0; i < 50 && current().entries(InterceptionPrograms.ORIG6_BY_PEER) != 0; i++) {
      Thread.sleep(100);
    }
    assertEquals(0, current().entries(InterceptionPrograms.ORIG6_BY_PEER));
    assertEquals(0, current().entries(InterceptionPrograms.ORIG6_BY_COOKIE));
  }

  // ---- helpers

  /** The proxy's inbound listener (python, 0.0.0.0:15006 in the pod), registered by its fd. */
  private Process registerInbound(InboundConfig config) throws IOException {
    Process proxy = serveProcess(pod, "proxy", "0.0.0.0", 15006);
    int remoteFd = Integer.parseInt(firstLine(proxy));
    int fd = Fds.take(proxy.pid(), remoteFd);
    fds.add(fd);
    current()
        .registerInbound(pod.path(), cookie, List.of(InetAddress.getByName(POD_IP)), fd, config);
    return proxy;
  }

  private void serve(TestNetns ns, String name, String host, int port) throws IOException {
    firstLine(serveProcess(ns, name, host, port));
  }

  private Process serveProcess(TestNetns ns, String name, String host, int port)
      throws IOException {
    return start(
        List.of(
            "ip",
            "netns",
            "exec",
            ns.name(),
            PYTHON,
            "-c",
            SERVER,
            name,
            host,
            String.valueOf(port)));
  }

  /**
   * "name local-address" of whoever accepted a fresh connection from {@code ns} to ip:port, or
   * "error ...".
   */
  private String answer(TestNetns ns, String ip, int port) throws Exception {
    Process p =
        start(
            List.of(
                "ip", "netns", "exec", ns.name(), PYTHON, "-c", CLIENT, ip, String.valueOf(port)));
    String line = firstLine(p);
    p.getOutputStream().close();
    p.waitFor(10, TimeUnit.SECONDS);
    String[] f = line.split(" ");
    return line.startsWith("error") ? line : f[0] + " " + f[1];
  }

  /** A client in the pod netns and the test cgroup (where the connect hooks run). */
  private Process inPodCgroup(TestNetns ns, String ip, String port) throws IOException {
    return start(
        List.of(
            "sh",
            "-c",
            cgroup.joinCommand() + "ip netns exec " + ns.name() + " \"$@\"",
            "sh",
            PYTHON,
            "-c",
            CLIENT,
            ip,
            port));
  }

  private Process start(List<String> cmd) throws IOException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    cleanup.add(p);
    return p;
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

  /** pidfd_getfd: this JVM's own handle on a socket another process made. */
  public interface TestLibC {
    long syscall(long number, long a, long b, long c);

    int close(int fd);
  }

  private static final class Fds {
    static final TestLibC C = LibraryLoader.create(TestLibC.class).load("c");
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
  }
}
