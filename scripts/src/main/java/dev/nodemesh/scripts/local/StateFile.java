package dev.nodemesh.scripts.local;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The journal of one local-mode run ({@code <run-dir>/state.json}): every netns, link, directory,
 * process and CNI attachment that {@code up} creates, recorded <em>before</em> it is created, so
 * {@code down} can undo a run that crashed half-way. Each change rewrites the whole file through a
 * temporary file, fsync and an atomic rename, so a crash leaves either the old or the new list,
 * never half of one.
 *
 * <p>Limits: one writer at a time (the {@code up} process); not safe for two concurrent runs in one
 * run directory, which {@link #create} refuses anyway.
 */
public final class StateFile {
  /** File name inside the run directory. */
  public static final String NAME = "state.json";

  /**
   * Format version, bumped on incompatible changes. 2 added CNI attachments and nodes, 3 the {@code
   * bpf} entries; older files (no such entries) are still read.
   */
  public static final int VERSION = 3;

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .setSerializationInclusion(JsonInclude.Include.NON_NULL);

  /** What kind of thing a {@link Resource} is; decides how {@code down} removes it. */
  public enum Kind {
    /** A named network namespace ({@code ip netns}). */
    netns,
    /** A network link; {@code netns} says where it lives. */
    link,
    /** A directory we made, removed recursively (e.g. /etc/netns/NAME). */
    dir,
    /** A process we started; pid 0 means "about to start". */
    process,
    /**
     * A pod attached through the CNI chain: {@code name} is the container id (also the pod's netns
     * name), {@code netns} the node netns the plugins run in, {@code config} the conflist file and
     * {@code args} the CNI_ARGS; {@code down} runs DEL through the same chain.
     */
    cni,
    /**
     * What a node proxy in eBPF mode pins and attaches (maps, cgroup links, each pod's inbound
     * link), which outlive the proxy on purpose: {@code name} is the proxy's role and {@code argv}
     * the command ({@code nodemesh proxy --uninstall} with the proxy's own flags) that {@code down}
     * runs after the proxy has stopped to detach and unpin them.
     */
    bpf
  }

  /**
   * One created (or about-to-be-created) thing.
   *
   * @param name the netns/link name, the absolute directory path, or the process's role
   * @param netns where a link or process lives; null for the root namespace
   * @param pid process id, 0 before the process exists
   * @param startMillis the process's start time from the kernel, to never signal a reused pid
   * @param config a CNI attachment's conflist file
   * @param args a CNI attachment's CNI_ARGS
   * @param argv a {@code bpf} entry's uninstall command; a process's command line (what {@code
   *     local upgrade-proxy} starts again), null in files written before it was recorded
   */
  public record Resource(
      Kind kind,
      String name,
      @Nullable String netns,
      long pid,
      @Nullable Long startMillis,
      @Nullable String config,
      @Nullable Map<String, String> args,
      @Nullable List<String> argv) {
    public Resource {
      args = args == null ? null : Map.copyOf(args);
      argv = argv == null ? null : List.copyOf(argv);
    }

    public Resource(
        Kind kind,
        String name,
        @Nullable String netns,
        long pid,
        @Nullable Long startMillis,
        @Nullable String config,
        @Nullable Map<String, String> args) {
      this(kind, name, netns, pid, startMillis, config, args, null);
    }

    public static Resource bpf(String role, List<String> uninstallArgv) {
      return new Resource(Kind.bpf, role, null, 0, null, null, null, uninstallArgv);
    }

    public Resource(
        Kind kind, String name, @Nullable String netns, long pid, @Nullable Long startMillis) {
      this(kind, name, netns, pid, startMillis, null, null);
    }

    public static Resource cni(
        String containerId, String nodeNetns, Path conflist, Map<String, String> args) {
      return new Resource(
          Kind.cni, containerId, nodeNetns, 0, null, conflist.toAbsolutePath().toString(), args);
    }

    public static Resource netns(String name) {
      return new Resource(Kind.netns, name, null, 0, null);
    }

    public static Resource link(String name, String netns) {
      return new Resource(Kind.link, name, netns, 0, null);
    }

    public static Resource dir(Path dir) {
      return new Resource(Kind.dir, dir.toAbsolutePath().toString(), null, 0, null);
    }

    public static Resource pendingProcess(String role, @Nullable String netns) {
      return new Resource(Kind.process, role, netns, 0, null);
    }
  }

  /**
   * A node of the run, for {@code status} and for tests and scripts that need its proxy.
   *
   * @param admin the node proxy's admin address (empty without a proxy)
   */
  public record NodeRecord(
      String name,
      String netns,
      String bridge,
      String subnet,
      String underlayIp,
      String admin,
      String agentSocket,
      List<String> pods) {
    public NodeRecord {
      pods = List.copyOf(pods);
    }
  }

  /**
   * The whole file.
   *
   * @param nodes the run's nodes (null in files written before multi-node runs)
   * @param cniPath the CNI bin path the run's plugins came from, so {@code down} runs the same ones
   */
  public record State(
      int version,
      String prefix,
      String configDir,
      boolean proxy,
      List<Resource> resources,
      @Nullable List<NodeRecord> nodes,
      @Nullable List<String> cniPath) {
    public State(
        int version, String prefix, String configDir, boolean proxy, List<Resource> resources) {
      this(version, prefix, configDir, proxy, resources, null, null);
    }
  }

  private final Path file;
  private State state;

  private StateFile(Path file, State state) {
    this.file = file;
    this.state = state;
  }

  /** Starts a new journal; fails if the run directory already holds one (run {@code down}). */
  public static StateFile create(Path runDir, String prefix, Path configDir, boolean proxy)
      throws IOException {
    Files.createDirectories(runDir);
    Path file = runDir.resolve(NAME);
    if (Files.exists(file)) {
      throw new IOException(
          file + " exists: a run is (or was) up here; run `nodemesh local down` first");
    }
    StateFile s =
        new StateFile(
            file,
            new State(VERSION, prefix, configDir.toAbsolutePath().toString(), proxy, List.of()));
    s.write();
    return s;
  }

  /** Reads the journal, or returns null when the run directory has none. */
  public static @Nullable StateFile load(Path runDir) throws IOException {
    Path file = runDir.resolve(NAME);
    if (!Files.exists(file)) {
      return null;
    }
    State state = JSON.readValue(file.toFile(), State.class);
    if (state.version() < 1 || state.version() > VERSION) {
      throw new IOException(
          file + " has format version " + state.version() + ", not 1 to " + VERSION);
    }
    return new StateFile(
        file,
        new State(
            state.version(),
            state.prefix(),
            state.configDir(),
            state.proxy(),
            state.resources() == null ? List.of() : List.copyOf(state.resources()),
            state.nodes(),
            state.cniPath()));
  }

  public State state() {
    return state;
  }

  public Path path() {
    return file;
  }

  /** Records the run's nodes and CNI bin path (before anything of them is created). */
  public synchronized void setNodes(List<NodeRecord> nodes, List<String> cniPath)
      throws IOException {
    state =
        new State(
            state.version(),
            state.prefix(),
            state.configDir(),
            state.proxy(),
            state.resources(),
            List.copyOf(nodes),
            List.copyOf(cniPath));
    write();
  }

  /** Records a resource; call before creating it. */
  public synchronized void add(Resource r) throws IOException {
    List<Resource> list = new ArrayList<>(state.resources());
    list.add(r);
    replace(list);
  }

  /** Replaces the entry equal to {@code old} (e.g. a pending process that now has a pid). */
  public synchronized void update(Resource old, Resource now) throws IOException {
    List<Resource> list = new ArrayList<>(state.resources());
    int i = list.indexOf(old);
    if (i < 0) {
      list.add(now);
    } else {
      list.set(i, now);
    }
    replace(list);
  }

  /** Forgets a resource once it is gone. */
  public synchronized void remove(Resource r) throws IOException {
    List<Resource> list = new ArrayList<>(state.resources());
    list.remove(r);
    replace(list);
  }

  /** Deletes the journal; {@code down} does this once nothing recorded is left. */
  public void delete() throws IOException {
    Files.deleteIfExists(file);
  }

  private void replace(List<Resource> list) throws IOException {
    state =
        new State(
            state.version(),
            state.prefix(),
            state.configDir(),
            state.proxy(),
            List.copyOf(list),
            state.nodes(),
            state.cniPath());
    write();
  }

  private void write() throws IOException {
    Path tmp = file.resolveSibling(NAME + ".tmp");
    byte[] bytes = JSON.writeValueAsBytes(state);
    try (FileChannel ch =
        FileChannel.open(
            tmp,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      ByteBuffer buf = ByteBuffer.wrap(bytes);
      while (buf.hasRemaining()) {
        ch.write(buf);
      }
      ch.force(true);
    }
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
