package dev.nodemesh.bpf.loader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.maps.SockKey;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.Cleanup;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The optional sk_msg shortcut for real: a pod netns and a test cgroup; the "proxy" is a python
 * process in both that listens on 127.0.0.1:15001 (so its accepted socket belongs to the attached
 * cgroup, as a node proxy running as a pod would), the app is a python process connecting to a
 * service address, redirected there by connect4. Over one connection: 1,000 request/responses, 10
 * MB app to proxy (the proxy answers its SHA-256), 10 MB proxy to app, then a half-close. Whether
 * the bytes went over TCP is read from the app socket's TCP_INFO (tcpi_bytes_acked and
 * tcpi_bytes_received count only bytes that crossed the TCP stack).
 */
@RootTest
class SkMsgShortcutRootTest {
  private static final String SERVICE = "10.97.0.10";
  private static final String PYTHON = "/usr/bin/python3";
  private static final int BULK = 10 * 1024 * 1024;
  private static final InetSocketAddress LISTENER = new InetSocketAddress("127.0.0.1", 15001);

  private static final String COMMON =
      "import socket,hashlib,random,struct,sys\n"
          + "BULK="
          + BULK
          + "\nN=1000\n"
          + "def rd(c,n):\n"
          + "  b=bytearray()\n"
          + "  while len(b)<n:\n"
          + "    x=c.recv(min(1<<20,n-len(b)))\n"
          + "    if not x: sys.exit('eof after %d of %d bytes'%(len(b),n))\n"
          + "    b+=x\n"
          + "  return bytes(b)\n";

  /** The proxy's stand-in: answers requests, checks and answers the upload, sends its own 10 MB. */
  private static final String PROXY =
      COMMON
          + "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
          + "s.bind(('127.0.0.1',15001)); s.listen(8); print('ready',flush=True)\n"
          + "c,_=s.accept()\n"
          + "for i in range(N):\n"
          + "  r=rd(c,17)\n"
          + "  if r!=b'req %012d\\n'%i: sys.exit('bad request %d: %r'%(i,r))\n"
          + "  c.sendall(b'rsp %012d\\n'%i)\n"
          + "c.sendall(hashlib.sha256(rd(c,BULK)).digest())\n"
          + "c.sendall(random.Random(2).randbytes(BULK))\n"
          + "if c.recv(1)!=b'': sys.exit('expected EOF')\n"
          + "c.close(); print('proxy ok',flush=True)\n";

  /** The app: after the request/responses it prints its port and waits for a line on stdin. */
  private static final String APP =
      COMMON
          + "c=socket.create_connection(('"
          + SERVICE
          + "',80),timeout=30)\n"
          + "for i in range(N):\n"
          + "  c.sendall(b'req %012d\\n'%i)\n"
          + "  r=rd(c,17)\n"
          + "  if r!=b'rsp %012d\\n'%i: sys.exit('bad response %d: %r'%(i,r))\n"
          + "print('port',c.getsockname()[1],flush=True); sys.stdin.readline()\n"
          + "up=random.Random(1).randbytes(BULK); c.sendall(up)\n"
          + "if rd(c,32)!=hashlib.sha256(up).digest(): sys.exit('upload digest differs')\n"
          + "if rd(c,BULK)!=random.Random(2).randbytes(BULK): sys.exit('download differs')\n"
          + "ti=c.getsockopt(socket.IPPROTO_TCP,socket.TCP_INFO,256)\n"
          + "acked,received=struct.unpack_from('QQ',ti,120)\n"
          + "c.shutdown(socket.SHUT_WR)\n"
          + "if c.recv(1)!=b'': sys.exit('expected EOF')\n"
          + "c.close(); print('app ok',acked,received,flush=True)\n";

  private final Cleanup cleanup = new Cleanup();
  private TestNetns pod;
  private TestCgroup cgroup;
  private Path pins;
  private long cookie;
  private final InstalledPrograms programs = new InstalledPrograms();

  @BeforeEach
  void setUp() throws IOException {
    pod = cleanup.add(TestNetns.create("skm"));
    cgroup = cleanup.add(TestCgroup.create("skm"));
    pins = cleanup.add(TestBpffs.mount()).path().resolve("nodemesh");
    cleanup.add(programs);
    try (NetworkNamespace ns = NetworkNamespace.open(pod.path())) {
      cookie = ns.cookie();
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    cleanup.close();
  }

  private InterceptionPrograms install(boolean skMsg) throws IOException {
    InterceptionPrograms p = InterceptionPrograms.install(cgroup.path(), pins, skMsg);
    programs.set(p);
    p.register(cookie, PodConfig.defaults());
    return p;
  }

  @Test
  void withTheShortcutBytesSkipTcpArriveIntactAndTheMapEmptiesAfterClose() throws Exception {
    InterceptionPrograms p = install(true);
    assertTrue(Files.exists(pins.resolve("link_skmsg_sockops")));
    assertTrue(Files.exists(pins.resolve("prog_skmsg")));
    Result r = exchange(p, true);
    assertTrue(
        r.acked < 4096 && r.received < 4096,
        "20 MB and 1,000 request/responses crossed, but TCP carried "
            + r.acked
            + " bytes out / "
            + r.received
            + " in: not shortcut");
    awaitEntries(p, 0);

    p.uninstall();
    programs.clear();
    assertFalse(Files.exists(pins.resolve("link_skmsg_sockops")));
    assertFalse(Files.exists(pins.resolve("prog_skmsg")));
  }

  @Test
  void withoutTheShortcutTheSameExchangeGoesOverTcp() throws Exception {
    InterceptionPrograms p = install(false);
    assertFalse(Files.exists(pins.resolve("link_skmsg_sockops")));
    Result r = exchange(p, false);
    assertTrue(r.acked > BULK && r.received > BULK, "TCP carried " + r.acked + "/" + r.received);
    assertEquals(0, p.entries(InterceptionPrograms.SKMSG_SOCKS));
  }

  @Test
  void aRestartWithoutTheFlagDetachesAPinnedShortcut() throws Exception {
    InterceptionPrograms on = install(true);
    on.close();
    programs.clear();
    InterceptionPrograms off = install(false);
    assertTrue(off.adopted());
    assertFalse(Files.exists(pins.resolve("link_skmsg_sockops")));
    assertFalse(Files.exists(pins.resolve("prog_skmsg")));
    Result r = exchange(off, false);
    assertTrue(r.acked > BULK && r.received > BULK, "TCP carried " + r.acked + "/" + r.received);
  }

  @Test
  void aRestartWithTheFlagAdoptsTheShortcut() throws Exception {
    InterceptionPrograms first = install(true);
    first.close();
    programs.clear();
    InterceptionPrograms again = install(true);
    assertTrue(again.adopted());
    Result r = exchange(again, true);
    assertTrue(r.acked < 4096 && r.received < 4096, "TCP carried " + r.acked + "/" + r.received);
    awaitEntries(again, 0);
  }

  private record Result(long acked, long received) {}

  /** Runs the exchange; while it is open, both ends are in the map exactly when expected. */
  private Result exchange(InterceptionPrograms p, boolean shortcut) throws Exception {
    Process proxy = inPod(PYTHON, "-c", PROXY);
    BufferedReader proxyOut = lines(proxy);
    assertEquals("ready", proxyOut.readLine());
    Process app = inPod(PYTHON, "-c", APP);
    BufferedReader appOut = lines(app);
    String port = appOut.readLine();
    if (port == null || !port.startsWith("port ")) {
      throw new AssertionError("app: " + port + rest(appOut));
    }
    SockKey appEnd =
        new SockKey(
            cookie,
            new InetSocketAddress("127.0.0.1", Integer.parseInt(port.substring(5))),
            LISTENER);
    assertEquals(shortcut, p.shortcutHolds(appEnd), "app end in nm_skmsg_socks");
    assertEquals(shortcut, p.shortcutHolds(appEnd.peer()), "proxy end in nm_skmsg_socks");
    OutputStream in = app.getOutputStream();
    in.write("go\n".getBytes(StandardCharsets.UTF_8));
    in.flush();
    String done = appOut.readLine();
    assertEquals(0, exit(app), "app: " + done + rest(appOut));
    assertEquals("proxy ok", proxyOut.readLine());
    assertEquals(0, exit(proxy));
    String[] w = done.split(" ");
    assertEquals("app ok", w[0] + " " + w[1], done);
    return new Result(Long.parseLong(w[2]), Long.parseLong(w[3]));
  }

  private void awaitEntries(InterceptionPrograms p, int expected) throws Exception {
    int last = p.entries(InterceptionPrograms.SKMSG_SOCKS);
    for (int i = 0; i < 600 && last != expected; i++) {
      Thread.sleep(50);
      last = p.entries(InterceptionPrograms.SKMSG_SOCKS);
    }
    assertEquals(expected, last, "nm_skmsg_socks entries after both ends closed");
  }

  /** A command inside the netns, in the test cgroup from its first instruction. */
  private Process inPod(String... cmd) throws IOException {
    List<String> full =
        new ArrayList<>(
            List.of(
                "sh",
                "-c",
                cgroup.joinCommand() + "ip netns exec " + pod.name() + " \"$@\"",
                "sh"));
    full.addAll(List.of(cmd));
    Process p = new ProcessBuilder(full).redirectErrorStream(true).start();
    cleanup.add(p);
    return p;
  }

  private static BufferedReader lines(Process p) {
    return new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
  }

  private static String rest(BufferedReader r) throws IOException {
    StringBuilder s = new StringBuilder();
    for (String l = r.readLine(); l != null; l = r.readLine()) {
      s.append('\n').append(l);
    }
    return s.toString();
  }

  private static int exit(Process p) throws InterruptedException {
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("process did not finish");
    }
    return p.exitValue();
  }
}
