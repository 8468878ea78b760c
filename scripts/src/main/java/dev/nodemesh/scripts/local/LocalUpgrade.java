package dev.nodemesh.scripts.local;

import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.cni.agent.AgentClient;
import dev.nodemesh.proxy.admin.AdminServer;
import dev.nodemesh.scripts.local.StateFile.Kind;
import dev.nodemesh.scripts.local.StateFile.NodeRecord;
import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import org.jspecify.annotations.Nullable;

/**
 * {@code nodemesh local upgrade-proxy}: replaces each node's proxy process by a fresh one with the
 * same command line, without a moment in which a pod's connections are refused. The fresh process
 * binds its in-pod listeners beside the old ones (SO_REUSEPORT), takes the agent socket over by
 * rename and shares the admin port; once it answers {@code /ready} itself (the answer names its
 * PID) and lists every pod the old one had enrolled, the old one gets SIGTERM: it stops accepting
 * (its queued connections move to the new listeners, see the proxy's {@code AcceptQueueMigration}),
 * drains, and exits. Returns when it has exited. The journal then records the new process in place
 * of the old.
 *
 * <p>Limits: nodes one after another. If the fresh process does not become ready in time it is
 * stopped again and the old one keeps carrying traffic, but the agent socket it took over is gone
 * with it, so pods cannot be added on that node until an upgrade succeeds (or the node is brought
 * down and up).
 */
public final class LocalUpgrade {
  /**
   * Flags of {@code local upgrade-proxy}.
   *
   * @param node the node to upgrade; null for every node of the run
   * @param readyTimeout how long the fresh process may take to be ready
   * @param stopTimeout how long the old process may take to drain and exit before it is killed
   */
  public record Options(
      Path runDir, @Nullable String node, Duration readyTimeout, Duration stopTimeout) {}

  /** What one node's upgrade did. */
  public record Upgraded(String node, long oldPid, long newPid, Duration ready, Duration exit) {}

  private final Options opts;
  private final PrintStream out;

  public LocalUpgrade(Options opts, PrintStream out) {
    this.opts = opts;
    this.out = out;
  }

  /** Upgrades the chosen nodes one by one; throws (with the reason) at the first that fails. */
  public List<Upgraded> run() throws IOException, InterruptedException {
    StateFile state = StateFile.load(opts.runDir());
    if (state == null) {
      throw new IOException("nothing recorded in " + opts.runDir() + " (no local node is up)");
    }
    List<NodeRecord> nodes = state.state().nodes();
    if (nodes == null || !state.state().proxy()) {
      throw new IOException("the run in " + opts.runDir() + " has no node proxies");
    }
    List<NodeRecord> chosen =
        nodes.stream().filter(n -> opts.node() == null || n.name().equals(opts.node())).toList();
    if (chosen.isEmpty()) {
      throw new IOException(
          "no node "
              + opts.node()
              + " in this run; nodes: "
              + String.join(", ", nodes.stream().map(NodeRecord::name).toList()));
    }
    List<Upgraded> done = new ArrayList<>();
    for (NodeRecord n : chosen) {
      Upgraded u = upgrade(state, n);
      out.printf(
          Locale.ROOT,
          "node %s: proxy pid %d -> %d (new one ready after %.1f s, old one drained and exited"
              + " %.1f s later)%n",
          u.node(),
          u.oldPid(),
          u.newPid(),
          u.ready().toMillis() / 1000.0,
          u.exit().toMillis() / 1000.0);
      done.add(u);
    }
    return done;
  }

  private Upgraded upgrade(StateFile state, NodeRecord node)
      throws IOException, InterruptedException {
    String role = "proxy:" + node.name();
    List<Resource> running =
        state.state().resources().stream()
            .filter(r -> r.kind() == Kind.process && r.name().equals(role) && Daemons.alive(r))
            .toList();
    if (running.size() != 1) {
      throw new IOException(
          running.isEmpty()
              ? "node " + node.name() + " has no running proxy to upgrade (see `local status`)"
              : "node "
                  + node.name()
                  + " runs "
                  + running.size()
                  + " proxies (an upgrade was interrupted?); stop the extra one first");
    }
    Resource old = running.get(0);
    // The new proxy does not train the AOT cache the old one may be training: two JVMs would write
    // the same file as they exit (ProxyAotCache).
    List<String> argv =
        ProxyAotCache.withoutTraining(
            Daemons.commandLine(old)
                .orElseThrow(() -> new IOException("proxy pid " + old.pid() + " has just exited")));
    Path agentSocket = Path.of(node.agentSocket());
    Set<String> enrolled = enrolled(agentSocket);
    Path log = opts.runDir().resolve("proxy-" + node.name() + ".log");

    long started = System.nanoTime();
    Resource fresh = Daemons.start(state, role, null, argv, log);
    try {
      awaitReady(node, fresh, log);
      Set<String> now = enrolled(agentSocket);
      if (!now.containsAll(enrolled)) {
        Set<String> missing = new TreeSet<>(enrolled);
        missing.removeAll(now);
        throw new IOException(
            "the new proxy (pid " + fresh.pid() + ") is ready but has not enrolled " + missing);
      }
    } catch (IOException | InterruptedException | RuntimeException e) {
      if (Daemons.stop(fresh)) {
        state.remove(fresh);
      }
      throw e;
    }
    Duration ready = Duration.ofNanos(System.nanoTime() - started);
    long stopping = System.nanoTime();
    if (!Daemons.stop(old, opts.stopTimeout())) {
      throw new IOException("the old proxy (pid " + old.pid() + ") did not exit");
    }
    state.remove(old);
    return new Upgraded(
        node.name(), old.pid(), fresh.pid(), ready, Duration.ofNanos(System.nanoTime() - stopping));
  }

  /** The pods the proxy behind the agent socket has enrolled (namespace/name). */
  private static Set<String> enrolled(Path agentSocket) throws IOException {
    try (AgentClient agent = new AgentClient(agentSocket, Duration.ofSeconds(10))) {
      Set<String> names = new TreeSet<>();
      for (Pod p : agent.listPods().getPodsList()) {
        names.add(p.getNamespace() + "/" + p.getName());
      }
      return names;
    } catch (RuntimeException e) {
      throw new IOException("the agent socket " + agentSocket + " does not answer: " + e, e);
    }
  }

  /**
   * Waits for a 200 from {@code /ready} that the fresh process gave itself: both processes listen
   * on the admin port, each probe is a new connection (the kernel picks a listener per connection),
   * and the answer's {@code x-nodemesh-pid} names who answered.
   */
  private void awaitReady(NodeRecord node, Resource fresh, Path log)
      throws IOException, InterruptedException {
    InetSocketAddress admin = hostPort(node.admin());
    long deadline = System.nanoTime() + opts.readyTimeout().toNanos();
    String last = "no answer yet";
    while (System.nanoTime() - deadline < 0) {
      if (!Daemons.alive(fresh)) {
        throw new IOException(
            "the new proxy (pid "
                + fresh.pid()
                + ") exited; last lines of "
                + log
                + ":\n"
                + Netns.tail(log, 20));
      }
      Probe p = probe(admin);
      if (p != null) {
        if (p.pid() == fresh.pid() && p.status() == 200) {
          return;
        }
        if (p.pid() == fresh.pid()) {
          last = p.status() + " " + p.body().trim();
        }
      }
      Thread.sleep(100);
    }
    throw new IOException(
        "the new proxy (pid "
            + fresh.pid()
            + ") was not ready within "
            + opts.readyTimeout().toSeconds()
            + " s ("
            + last
            + "); see "
            + log);
  }

  /** One {@code GET /ready} on a connection of its own. */
  record Probe(int status, long pid, String body) {}

  static @Nullable Probe probe(InetSocketAddress admin) {
    try (Socket s = new Socket()) {
      s.connect(admin, 2000);
      s.setSoTimeout(2000);
      s.getOutputStream()
          .write("GET /ready HTTP/1.0\r\nHost: admin\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      InputStream in = s.getInputStream();
      return parse(new String(in.readAllBytes(), StandardCharsets.ISO_8859_1));
    } catch (IOException e) {
      return null;
    }
  }

  static @Nullable Probe parse(String response) {
    int headEnd = response.indexOf("\r\n\r\n");
    if (!response.startsWith("HTTP/1.") || headEnd < 0) {
      return null;
    }
    String[] lines = response.substring(0, headEnd).split("\r\n");
    String[] statusLine = lines[0].split(" ");
    if (statusLine.length < 2) {
      return null;
    }
    long pid = -1;
    for (String l : lines) {
      int colon = l.indexOf(':');
      if (colon > 0 && l.substring(0, colon).trim().equalsIgnoreCase(AdminServer.PID_HEADER)) {
        try {
          pid = Long.parseLong(l.substring(colon + 1).trim());
        } catch (NumberFormatException e) {
          return null;
        }
      }
    }
    try {
      return new Probe(Integer.parseInt(statusLine[1]), pid, response.substring(headEnd + 4));
    } catch (NumberFormatException e) {
      return null;
    }
  }

  private static InetSocketAddress hostPort(String hostPort) throws IOException {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0) {
      throw new IOException("the journal's admin address is not HOST:PORT: " + hostPort);
    }
    return new InetSocketAddress(
        hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
  }
}
