package dev.nodemesh.cni;

import dev.nodemesh.cni.plugin.Plugin;
import dev.nodemesh.cni.plugin.PodNetns;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.model.cni.AgentWire;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The training run for the plugin's start-up cache ({@code nodemesh-cni train}): VERSION, ADD,
 * CHECK, DEL and STATUS through the real plugin and its framed agent client against a throw-away
 * in-memory agent on a temporary Unix socket, so the JDK's AOT cache (or, on a JDK before 25, the
 * AppCDS archive) holds the classes, and their linking, that a real pod start uses. The wrapper
 * runs this JVM with {@code -XX:AOTCacheOutput} (or {@code -XX:ArchiveClassesAtExit}).
 *
 * <p>The agent here is a few lines of blocking JDK code on its own thread: the node proxy's server
 * is not on the plugin's class path, and its classes would only take room in the cache.
 */
public final class StartupTraining {
  private StartupTraining() {}

  public static void main(String[] args) throws Exception {
    Path dir = Files.createTempDirectory("nodemesh-cni-train");
    int failures = 0;
    Path agentSocket = dir.resolve("agent.sock");
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(AgentWire.socketFor(agentSocket)));
      Thread agent = new Thread(() -> serve(server), "nodemesh-cni-train-agent");
      agent.setDaemon(true);
      agent.start();
      String conf =
          """
          {"cniVersion": "1.1.0", "name": "train", "type": "nodemesh",
           "agentSocket": "%s", "runDir": "%s",
           "prevResult": {"cniVersion": "1.1.0",
             "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/train"}],
             "ips": [{"address": "10.0.0.2/24", "interface": 0}]}}
          """
              .formatted(agentSocket, dir.resolve("run"));
      // There is no pod namespace to check here: the real check runs (so its classes go into the
      // cache) on the made-up path, and its refusal is ignored for the training run only.
      Plugin plugin =
          Plugin.standardWith(
              new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
              path -> {
                try {
                  PodNetns.standard().require(path);
                } catch (CniError expected) {
                  // expected: /var/run/netns/train does not exist
                }
                try {
                  // A namespace file that exists (not a network one): the rest of the check, its
                  // string building included, runs too (an untrained string concatenation costs a
                  // pod start a few ms of method-handle set-up).
                  PodNetns.standard().require("/proc/self/ns/uts");
                } catch (CniError expected) {
                  // expected: not a network namespace
                }
              });
      // What a real call does that the calls below never reach, so that its classes go into the
      // cache too: CniMain reads the process environment (the calls here get a map), and ADD's
      // PodNetns reads the mount table for a bind-mounted netns (the made-up path here is refused
      // before that).
      // And the executable's warm-up thread (CniMain.main), whose class the cache must hold too.
      Plugin.warmUp("ADD");
      int unused =
          System.getenv().size()
              + Files.readAllLines(Path.of("/proc/self/mountinfo"), StandardCharsets.UTF_8).size();
      // The executable's own path (CniMain: reading stdin, the environment, printing), which the
      // runtime's exec takes first: VERSION, and an ADD that its real netns check refuses here.
      for (String command : List.of("VERSION", "ADD")) {
        CniMain.run(
            new ByteArrayInputStream(conf.getBytes(StandardCharsets.UTF_8)),
            new ByteArrayOutputStream(),
            trainingEnv(command));
      }
      // Three rounds: the JDK 25 cache also keeps method profiles (JEP 515); a few calls give some.
      for (int round = 0; round < 3; round++) {
        for (String command : List.of("VERSION", "ADD", "CHECK", "DEL", "STATUS")) {
          Map<String, String> env = trainingEnv(command);
          Plugin.Response r = plugin.run(env, conf.getBytes(StandardCharsets.UTF_8));
          if (r.exitCode() != 0) {
            System.err.println("training " + command + " failed: " + r.stdout());
            failures++;
          }
        }
      }
    } finally {
      deleteTree(dir);
    }
    System.exit(failures == 0 ? 0 : 1);
  }

  /** Remembers pods by uid; one request per connection, as the node proxy serves it. */
  private static void serve(ServerSocketChannel server) {
    Map<String, AgentWire.Pod> pods = new ConcurrentHashMap<>();
    while (server.isOpen()) {
      try (SocketChannel ch = server.accept()) {
        AgentWire.Request req = AgentWire.decodeRequest(AgentWire.readFrame(ch));
        AgentWire.Reply reply;
        if (req instanceof AgentWire.AddPod add) {
          reply = AgentWire.Reply.ok(pods.put(add.pod().uid(), add.pod()) != null);
        } else if (req instanceof AgentWire.DelPod del) {
          reply = AgentWire.Reply.ok(pods.remove(del.uid()) != null);
        } else {
          reply = AgentWire.Reply.ok(new ArrayList<>(pods.values()));
        }
        ByteBuffer out = ByteBuffer.wrap(AgentWire.encode(reply));
        while (out.hasRemaining()) {
          ch.write(out);
        }
      } catch (IOException e) {
        if (server.isOpen()) {
          System.err.println("training agent: " + e);
        }
      }
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  /** The environment a runtime would give {@code command} for the training's pretend pod. */
  private static Map<String, String> trainingEnv(String command) {
    return Map.of(
        "CNI_COMMAND", command,
        "CNI_CONTAINERID", "train",
        "CNI_NETNS", "/var/run/netns/train",
        "CNI_IFNAME", "eth0",
        "CNI_PATH", "/opt/cni/bin",
        "CNI_ARGS", "K8S_POD_NAMESPACE=train;K8S_POD_NAME=train;K8S_POD_UID=train");
  }
}
