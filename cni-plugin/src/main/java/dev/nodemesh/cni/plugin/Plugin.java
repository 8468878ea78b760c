package dev.nodemesh.cni.plugin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.plugin.Agent.AgentException;
import dev.nodemesh.cni.spec.CniEnv;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.cni.spec.CniVersion;
import dev.nodemesh.cni.spec.NetConf;
import dev.nodemesh.cni.spec.Results;
import dev.nodemesh.model.cni.AgentWire.Pod;
import dev.nodemesh.model.cni.JsonTrees;
import dev.nodemesh.model.cni.MalformedJsonException;
import dev.nodemesh.model.cni.PodRecords;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The nodemesh CNI plugin: a dispatcher over the CNI commands, chained after the cluster's own
 * plugins (like the reference {@code tuning} plugin, it changes nothing in {@code prevResult}).
 *
 * <ul>
 *   <li>ADD checks that {@code CNI_NETNS} is a network namespace other than the host's ({@link
 *       PodNetns}), records the pod, sends it to the node agent and waits for the ack. Agent
 *       missing, down or refusing is code 11, so the runtime retries and no pod starts unmeshed; a
 *       failed ADD removes the record it wrote.
 *   <li>Before any command, every input is held to {@link InputLimits}.
 *   <li>DEL is idempotent and best-effort: it succeeds when the agent or the pod is gone.
 *   <li>CHECK asks the agent whether the pod is enrolled (ListPods).
 *   <li>STATUS succeeds whenever the config is valid: reporting "not available" while the agent is
 *       down would stop every pod on the node, including the ones excluded from the mesh and the
 *       nodemesh control plane itself. ADD's code 11 holds meshed pods back instead.
 *   <li>GC drops records (and enrolments) of attachments the runtime no longer lists.
 * </ul>
 */
public final class Plugin {
  /** Opens a connection to the node agent; replaced in tests. */
  @FunctionalInterface
  public interface AgentFactory {
    Agent open(Path socket, Duration deadline) throws AgentException;
  }

  /** What a call prints on stdout and its exit status. */
  public record Response(int exitCode, String stdout) {}

  /*
   * The real agent client and netns check as constants: a lambda or method reference is an
   * invokedynamic call site, and the AOT cache holds the lambda's class only for call sites the
   * training run resolved. Made in the class initialiser, which the training run also runs, a pod
   * start never spins a lambda class (that took the classfile API and a few ms in each ADD).
   */
  private static final AgentFactory FRAMED = FramedAgent::open;
  private static final PodNetns.Check POD_NETNS = netns -> PodNetns.standard().require(netns);

  private final AgentFactory agents;
  private final PrintStream log;
  private final PodNetns.Check netnsCheck;

  public Plugin(AgentFactory agents, PrintStream log) {
    this(agents, log, POD_NETNS);
  }

  public Plugin(AgentFactory agents, PrintStream log, PodNetns.Check netnsCheck) {
    this.agents = agents;
    this.log = log;
    this.netnsCheck = netnsCheck;
  }

  /**
   * For the executable, before it reads stdin: a command that will call the node agent ({@code
   * CNI_COMMAND} ADD, DEL, CHECK or GC) starts the JDK's Unix-socket set-up on another thread (see
   * {@code FramedAgent.warmUpInBackground}). Any other value, or none, starts nothing.
   */
  public static void warmUp(@Nullable String command) {
    if ("ADD".equals(command)
        || "DEL".equals(command)
        || "CHECK".equals(command)
        || "GC".equals(command)) {
      FramedAgent.warmUpInBackground();
    }
  }

  /** The plugin with the real node agent client, logging to stderr. */
  public static Plugin standard() {
    return standardWith(System.err);
  }

  /** The real node agent client, logging to {@code log}. */
  public static Plugin standardWith(PrintStream log) {
    return new Plugin(FRAMED, log);
  }

  /**
   * The real node agent client with another {@code CNI_NETNS} check (tests, the AOT training run).
   */
  public static Plugin standardWith(PrintStream log, PodNetns.Check netnsCheck) {
    return new Plugin(FRAMED, log, netnsCheck);
  }

  /**
   * One call. Every outcome is one JSON object (or nothing) on stdout: a {@link CniError} or any
   * {@link RuntimeException} becomes an error object here; {@code CniMain} does the same for an
   * {@link Error}.
   */
  public Response run(Map<String, String> env, byte[] stdin) {
    // Sizes first: nothing below reads an oversized field. stdin is parsed here, once.
    InputLimits.Stdin in;
    try {
      in = InputLimits.checkStdin(stdin);
      InputLimits.checkEnv(env);
    } catch (CniError err) {
      return new Response(1, JsonTrees.write(err.toJson(CniVersion.LATEST)));
    }
    // Errors found before the config is decoded (the environment) still answer in the config's
    // version when stdin names one we speak.
    CniVersion version = peekVersion(in.tree());
    try {
      CniEnv e = CniEnv.from(env);
      if (e.command() == CniEnv.Command.VERSION) {
        return ok(version(in.tree()));
      }
      MalformedJsonException malformed = in.malformed();
      if (malformed != null) {
        throw NetConf.malformed(malformed);
      }
      NetConf conf = NetConf.of(in.tree());
      version = conf.version();
      PluginConfig config = PluginConfig.from(conf.raw());
      return switch (e.command()) {
        case ADD -> ok(add(e, conf, config));
        case DEL -> {
          del(e, conf, config);
          yield new Response(0, "");
        }
        case CHECK -> {
          check(e, conf, config);
          yield new Response(0, "");
        }
        case STATUS -> {
          requireVersion(conf, CniVersion.V1_1_0, "STATUS");
          yield new Response(0, "");
        }
        case GC -> {
          gc(conf, config);
          yield new Response(0, "");
        }
        case VERSION -> throw new IllegalStateException("handled above");
      };
    } catch (CniError err) {
      return new Response(1, JsonTrees.write(err.toJson(version)));
    } catch (RuntimeException err) {
      return new Response(
          1,
          JsonTrees.write(
              new CniError(CniError.INTERNAL, "nodemesh plugin failed", String.valueOf(err))
                  .toJson(version)));
    }
  }

  private static CniVersion peekVersion(@Nullable JsonNode in) {
    try {
      return in == null ? CniVersion.LATEST : CniVersion.parse(in.path("cniVersion").asText(""));
    } catch (CniError e) {
      return CniVersion.LATEST;
    }
  }

  private static Response ok(JsonNode out) {
    return new Response(0, JsonTrees.writePretty(out));
  }

  /**
   * Answers with the requested version when it is one we speak, else the latest. VERSION needs
   * nothing from stdin: unreadable or empty stdin is not an error.
   */
  private static JsonNode version(@Nullable JsonNode in) {
    String asked = in == null ? "" : in.path("cniVersion").asText("");
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    List<String> supported = CniVersion.supported();
    out.put("cniVersion", supported.contains(asked) ? asked : CniVersion.LATEST.toString());
    ArrayNode a = out.putArray("supportedVersions");
    for (String v : supported) {
      a.add(v);
    }
    return out;
  }

  private ObjectNode add(CniEnv e, NetConf conf, PluginConfig config) throws CniError {
    ObjectNode prev = requirePrevResult(conf, "ADD");
    ObjectNode result = Results.convert(prev, conf.version());
    PodId id = PodId.of(e);
    if (config.excludes(id.namespace(), id.name())) {
      log.println("nodemesh: " + id + " is excluded from the mesh; passing prevResult on");
      return result;
    }
    List<String> ips = Results.podIps(prev);
    if (ips.isEmpty()) {
      throw new CniError(
          CniError.INVALID_NETWORK_CONFIG,
          "prevResult has no pod IP",
          "nodemesh must be chained after the plugin that assigns the pod's addresses");
    }
    netnsCheck.require(e.netns());
    PodRecords records = new PodRecords(config.runDir());
    // A repeated ADD of the same container must not lose the record of the earlier one.
    PodRecords.Record earlier = records.read(e.containerId());
    try {
      records.write(
          new PodRecords.Record(
              conf.name(),
              e.containerId(),
              e.ifname(),
              e.netns(),
              id.uid(),
              id.name(),
              id.namespace(),
              ips));
    } catch (IOException ex) {
      throw new CniError(
          CniError.IO_FAILURE,
          "recording the pod under " + config.runDir() + " failed",
          ex.toString());
    }
    boolean enrolled = false;
    try {
      Pod pod = new Pod(id.uid(), id.name(), id.namespace(), e.netns(), ips);
      try (Agent agent = agents.open(config.agentSocket(), config.agentTimeout())) {
        agent.addPod(pod);
      } catch (AgentException ex) {
        throw new CniError(
            CniError.TRY_AGAIN_LATER,
            "the nodemesh node agent did not enrol " + id + "; try again later",
            String.valueOf(ex.getMessage()));
      }
      enrolled = true;
    } finally {
      // Any failure after the write (an error object, an exception, an Error): the record goes, so
      // a restarted agent does not enrol a pod whose ADD the runtime saw fail.
      if (!enrolled) {
        unrecord(records, e.containerId(), earlier);
      }
    }
    return result;
  }

  private void unrecord(
      PodRecords records, String containerId, PodRecords.@Nullable Record earlier) {
    try {
      if (earlier != null) {
        records.write(earlier);
      } else {
        records.remove(containerId);
      }
    } catch (IOException | RuntimeException ex) {
      log.println("nodemesh: ADD " + containerId + ": undoing its record: " + ex);
    }
  }

  private void del(CniEnv e, NetConf conf, PluginConfig config) throws CniError {
    PodRecords records = new PodRecords(config.runDir());
    PodRecords.Record r = records.read(e.containerId());
    PodId id = r != null ? new PodId(r.uid(), r.name(), r.namespace()) : PodId.of(e);
    String netns = r != null && e.netns().isEmpty() ? r.netns() : e.netns();
    if (!config.excludes(id.namespace(), id.name())) {
      try (Agent agent = agents.open(config.agentSocket(), config.agentTimeout())) {
        agent.delPod(id.uid(), netns);
      } catch (AgentException ex) {
        // Best-effort: the namespace is going away, and a restarted agent reconciles from the
        // records, where this pod will no longer be.
        log.println("nodemesh: DEL " + id + ": " + ex.getMessage() + " (ignored)");
      }
    }
    try {
      records.remove(e.containerId());
    } catch (IOException ex) {
      log.println("nodemesh: DEL " + id + ": removing its record: " + ex + " (ignored)");
    }
  }

  private void check(CniEnv e, NetConf conf, PluginConfig config) throws CniError {
    requireVersion(conf, CniVersion.V0_4_0, "CHECK");
    requirePrevResult(conf, "CHECK");
    PodId id = PodId.of(e);
    if (config.excludes(id.namespace(), id.name())) {
      return;
    }
    List<Pod> pods;
    try (Agent agent = agents.open(config.agentSocket(), config.agentTimeout())) {
      pods = agent.listPods();
    } catch (AgentException ex) {
      throw new CniError(
          CniError.TRY_AGAIN_LATER,
          "the nodemesh node agent could not be asked about " + id,
          String.valueOf(ex.getMessage()));
    }
    for (Pod p : pods) {
      if (p.uid().equals(id.uid())) {
        if (!p.netnsPath().equals(e.netns())) {
          throw new CniError(
              CniError.NOT_ENROLLED,
              id + " is enrolled with another network namespace",
              "agent has " + p.netnsPath() + ", runtime has " + e.netns());
        }
        return;
      }
    }
    throw new CniError(CniError.NOT_ENROLLED, id + " is not enrolled with the node agent");
  }

  private void gc(NetConf conf, PluginConfig config) throws CniError {
    requireVersion(conf, CniVersion.V1_1_0, "GC");
    Set<String> valid = new HashSet<>();
    JsonNode attachments = conf.raw().path("cni.dev/valid-attachments");
    if (!attachments.isMissingNode() && !attachments.isArray()) {
      throw new CniError(
          CniError.INVALID_NETWORK_CONFIG, "cni.dev/valid-attachments must be a list");
    }
    for (JsonNode a : attachments) {
      valid.add(a.path("containerID").asText("") + "/" + a.path("ifname").asText(""));
    }
    PodRecords records = new PodRecords(config.runDir());
    List<PodRecords.Record> stale;
    try {
      stale =
          records.list().stream()
              .filter(r -> r.network().equals(conf.name()))
              .filter(r -> !valid.contains(r.containerId() + "/" + r.ifname()))
              .toList();
    } catch (IOException ex) {
      throw new CniError(CniError.IO_FAILURE, "listing " + config.runDir(), ex.toString());
    }
    if (stale.isEmpty()) {
      return;
    }
    Agent agent = null;
    try {
      agent = agents.open(config.agentSocket(), config.agentTimeout());
    } catch (AgentException ex) {
      log.println("nodemesh: GC: " + ex.getMessage() + "; removing records only");
    }
    try {
      for (PodRecords.Record r : stale) {
        if (agent != null) {
          try {
            agent.delPod(r.uid(), r.netns());
          } catch (AgentException ex) {
            log.println("nodemesh: GC " + r.containerId() + ": " + ex.getMessage() + " (ignored)");
          }
        }
        try {
          records.remove(r.containerId());
        } catch (IOException ex) {
          log.println("nodemesh: GC " + r.containerId() + ": " + ex + " (ignored)");
        }
      }
    } finally {
      if (agent != null) {
        agent.close();
      }
    }
  }

  private static ObjectNode requirePrevResult(NetConf conf, String command) throws CniError {
    ObjectNode prev = conf.prevResult();
    if (prev == null) {
      throw new CniError(
          CniError.INVALID_NETWORK_CONFIG,
          "nodemesh is a chained plugin: " + command + " needs prevResult",
          "put nodemesh after the plugin that creates the pod's interface");
    }
    return prev;
  }

  private static void requireVersion(NetConf conf, CniVersion min, String command) throws CniError {
    if (!conf.version().atLeast(min)) {
      throw new CniError(
          CniError.INCOMPATIBLE_VERSION,
          "config version does not allow " + command,
          "config is \"" + conf.version() + "\", " + command + " needs " + min + " or later");
    }
  }

  /**
   * The pod as Kubernetes names it (from {@code CNI_ARGS}); a runtime that sends no {@code K8S_*}
   * args gets the container ID as uid and name, in namespace "default".
   */
  record PodId(String uid, String name, String namespace) {
    static PodId of(CniEnv e) {
      Map<String, String> a = e.args();
      String uid = a.getOrDefault("K8S_POD_UID", "");
      String name = a.getOrDefault("K8S_POD_NAME", "");
      String ns = a.getOrDefault("K8S_POD_NAMESPACE", "");
      return new PodId(
          uid.isEmpty() ? e.containerId() : uid,
          name.isEmpty() ? e.containerId() : name,
          ns.isEmpty() ? "default" : ns);
    }

    @Override
    public String toString() {
      return "pod " + namespace + "/" + name + " (uid " + uid + ")";
    }
  }
}
