package dev.nodemesh.cni;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.DelPodResponse;
import dev.nodemesh.api.agent.v1.ListPodsRequest;
import dev.nodemesh.api.agent.v1.ListPodsResponse;
import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.cni.plugin.Plugin;
import dev.nodemesh.cni.plugin.PodNetns;
import dev.nodemesh.cni.spec.CniError;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The training run for the plugin's AppCDS archive ({@code nodemesh-cni train}): ADD, CHECK, DEL
 * and VERSION through the real plugin and gRPC client against a throw-away in-memory agent on a
 * temporary Unix socket, so the archive holds the classes a real pod start loads. The agent's own
 * server classes end up in the archive too; they cost space, not start-up time.
 */
public final class CdsTraining {
  private CdsTraining() {}

  /** {@code args[0]}, if given: the lib dir to put grpc's epoll library in (see below). */
  public static void main(String[] args) throws Exception {
    if (args.length > 0) {
      extractEpollLibrary(Path.of(args[0]));
    }
    Path dir = Files.createTempDirectory("nodemesh-cni-train");
    EventLoopGroup group = new EpollEventLoopGroup(1);
    Server server =
        NettyServerBuilder.forAddress(new DomainSocketAddress(dir.resolve("agent.sock").toString()))
            .channelType(EpollServerDomainSocketChannel.class)
            .bossEventLoopGroup(group)
            .workerEventLoopGroup(group)
            .addService(new MemoryAgent())
            .build()
            .start();
    int failures = 0;
    try {
      String conf =
          """
          {"cniVersion": "1.1.0", "name": "train", "type": "nodemesh",
           "agentSocket": "%s", "runDir": "%s",
           "prevResult": {"cniVersion": "1.1.0",
             "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/train"}],
             "ips": [{"address": "10.0.0.2/24", "interface": 0}]}}
          """
              .formatted(dir.resolve("agent.sock"), dir.resolve("run"));
      // There is no pod namespace to check here: the real check runs (so its classes go into the
      // archive) on the made-up path, and its refusal is ignored for the training run only.
      Plugin plugin =
          Plugin.standardWith(
              new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
              path -> {
                try {
                  PodNetns.standard().require(path);
                } catch (CniError expected) {
                  // expected: /var/run/netns/train does not exist
                }
              });
      for (String command : List.of("VERSION", "ADD", "CHECK", "DEL", "STATUS")) {
        Map<String, String> env =
            Map.of(
                "CNI_COMMAND", command,
                "CNI_CONTAINERID", "train",
                "CNI_NETNS", "/var/run/netns/train",
                "CNI_IFNAME", "eth0",
                "CNI_PATH", "/opt/cni/bin",
                "CNI_ARGS", "K8S_POD_NAMESPACE=train;K8S_POD_NAME=train;K8S_POD_UID=train");
        Plugin.Response r = plugin.run(env, conf.getBytes(StandardCharsets.UTF_8));
        if (r.exitCode() != 0) {
          System.err.println("training " + command + " failed: " + r.stdout());
          failures++;
        }
      }
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
      deleteTree(dir);
    }
    System.exit(failures == 0 ? 0 : 1);
  }

  /**
   * grpc's shaded Netty extracts its epoll library from the jar to a temp file on every start
   * unless {@code java.library.path} already holds it; the wrapper points that at the lib dir, so a
   * copy there saves the extraction on every pod start.
   */
  static void extractEpollLibrary(Path libDir) throws IOException {
    String arch = System.getProperty("os.arch", "").equals("aarch64") ? "aarch_64" : "x86_64";
    String name = "libio_grpc_netty_shaded_netty_transport_native_epoll_" + arch + ".so";
    try (var in =
        CdsTraining.class.getClassLoader().getResourceAsStream("META-INF/native/" + name)) {
      if (in == null) {
        return;
      }
      Path tmp = Files.createTempFile(libDir, "." + name, ".tmp");
      try {
        Files.copy(in, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.move(tmp, libDir.resolve(name), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      } finally {
        Files.deleteIfExists(tmp);
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

  /** Remembers pods; nothing else. */
  private static final class MemoryAgent extends NodeAgentGrpc.NodeAgentImplBase {
    private final Map<String, Pod> pods = new ConcurrentHashMap<>();

    @Override
    public void addPod(AddPodRequest req, StreamObserver<AddPodResponse> out) {
      pods.put(req.getPod().getUid(), req.getPod());
      out.onNext(AddPodResponse.getDefaultInstance());
      out.onCompleted();
    }

    @Override
    public void delPod(DelPodRequest req, StreamObserver<DelPodResponse> out) {
      out.onNext(
          DelPodResponse.newBuilder().setWasEnrolled(pods.remove(req.getUid()) != null).build());
      out.onCompleted();
    }

    @Override
    public void listPods(ListPodsRequest req, StreamObserver<ListPodsResponse> out) {
      out.onNext(ListPodsResponse.newBuilder().addAllPods(pods.values()).build());
      out.onCompleted();
    }
  }
}
