package dev.nodemesh.cni.spec;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * The {@code CNI_*} environment of one plugin call, checked the way libcni's skel checks it: each
 * command's required variables present (code 4 naming the missing ones), container ID and interface
 * name well-formed, {@code CNI_ARGS} split into its {@code KEY=VALUE} pairs.
 */
public record CniEnv(
    Command command,
    String containerId,
    String netns,
    String ifname,
    Map<String, String> args,
    List<String> path) {

  /** The commands of CNI 1.1. */
  public enum Command {
    ADD,
    DEL,
    CHECK,
    STATUS,
    VERSION,
    GC;

    /**
     * The command named exactly {@code name}, or null. Not {@code valueOf}: that finds the
     * constants through a reflective call of {@code values()}, method handles that a pod start need
     * not make.
     */
    static @Nullable Command named(String name) {
      return switch (name) {
        case "ADD" -> ADD;
        case "DEL" -> DEL;
        case "CHECK" -> CHECK;
        case "STATUS" -> STATUS;
        case "VERSION" -> VERSION;
        case "GC" -> GC;
        default -> null;
      };
    }
  }

  // From libcni's utils.ValidateContainerID / ValidateInterfaceName.
  private static final Pattern CONTAINER_ID = Pattern.compile("^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$");
  private static final int IFNAME_MAX = 15;

  public CniEnv {
    args = Map.copyOf(args);
    path = List.copyOf(path);
  }

  public static CniEnv from(Map<String, String> env) throws CniError {
    String cmd = env.getOrDefault("CNI_COMMAND", "");
    if (cmd.isEmpty()) {
      throw new CniError(
          CniError.INVALID_ENVIRONMENT, "required env variables [CNI_COMMAND] missing");
    }
    Command command = Command.named(cmd);
    if (command == null) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "unknown CNI_COMMAND: " + cmd);
    }
    Set<String> required =
        switch (command) {
          case ADD, CHECK -> Set.of("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH");
          case DEL -> Set.of("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH");
          case GC, STATUS -> Set.of("CNI_PATH");
          case VERSION -> Set.of();
        };
    List<String> missing = new ArrayList<>();
    for (String v : List.of("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")) {
      if (required.contains(v) && env.getOrDefault(v, "").isEmpty()) {
        missing.add(v);
      }
    }
    if (!missing.isEmpty()) {
      throw new CniError(
          CniError.INVALID_ENVIRONMENT, "required env variables " + missing + " missing");
    }
    String containerId = env.getOrDefault("CNI_CONTAINERID", "");
    if (!containerId.isEmpty() && !CONTAINER_ID.matcher(containerId).matches()) {
      throw new CniError(
          CniError.INVALID_ENVIRONMENT,
          "invalid characters in containerID",
          "\"" + containerId + "\" must match " + CONTAINER_ID.pattern());
    }
    String ifname = env.getOrDefault("CNI_IFNAME", "");
    if (!ifname.isEmpty()) {
      checkIfname(ifname);
    }
    String pathList = env.getOrDefault("CNI_PATH", "");
    List<String> path = new ArrayList<>();
    for (String p : pathList.split(":")) {
      if (!p.isEmpty()) {
        path.add(p);
      }
    }
    return new CniEnv(
        command,
        containerId,
        env.getOrDefault("CNI_NETNS", ""),
        ifname,
        parseArgs(env.getOrDefault("CNI_ARGS", "")),
        path);
  }

  /** {@code K8S_POD_NAME=a;K8S_POD_NAMESPACE=b}: a pair without '=' is an error, as in libcni. */
  public static Map<String, String> parseArgs(String cniArgs) throws CniError {
    Map<String, String> out = new LinkedHashMap<>();
    if (cniArgs.isEmpty()) {
      return out;
    }
    for (String pair : cniArgs.split(";")) {
      int eq = pair.indexOf('=');
      if (eq <= 0) {
        throw new CniError(
            CniError.INVALID_ENVIRONMENT, "ARGS: invalid pair \"" + pair + "\" in CNI_ARGS");
      }
      out.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    return out;
  }

  private static void checkIfname(String ifname) throws CniError {
    String why = null;
    if (ifname.length() > IFNAME_MAX) {
      why = "longer than " + IFNAME_MAX + " characters";
    } else if (ifname.equals(".") || ifname.equals("..")) {
      why = "is . or ..";
    } else {
      for (char c : ifname.toCharArray()) {
        if (c == '/' || c == ':' || Character.isWhitespace(c)) {
          why = "contains '" + c + "'";
          break;
        }
      }
    }
    if (why != null) {
      throw new CniError(
          CniError.INVALID_ENVIRONMENT, "invalid interface name", "\"" + ifname + "\" " + why);
    }
  }
}
