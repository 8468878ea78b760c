package dev.nodemesh.cni.spec;

import java.util.ArrayList;
import java.util.List;

/**
 * The CNI spec versions this code reads and writes. 0.3.x and 0.4.0 are accepted so older conflists
 * keep working; 0.1.0/0.2.0 (a different result format) are not.
 */
public enum CniVersion {
  V0_3_0("0.3.0"),
  V0_3_1("0.3.1"),
  V0_4_0("0.4.0"),
  V1_0_0("1.0.0"),
  V1_1_0("1.1.0");

  public static final CniVersion LATEST = V1_1_0;

  private final String text;

  CniVersion(String text) {
    this.text = text;
  }

  /**
   * The version named in a config; a missing one means 0.1.0, as libcni decodes it, which is then
   * refused like any other unsupported version.
   */
  public static CniVersion parse(String text) throws CniError {
    for (CniVersion v : values()) {
      if (v.text.equals(text)) {
        return v;
      }
    }
    String shown = text.isEmpty() ? "0.1.0" : text;
    throw new CniError(
        CniError.INCOMPATIBLE_VERSION,
        "incompatible CNI versions",
        "config is \"" + shown + "\", plugin supports " + supported());
  }

  public static List<String> supported() {
    // A loop, not a stream: the plugin's process lives for one call, and a stream pipeline is a few
    // dozen classes to initialise for five strings.
    List<String> out = new ArrayList<>();
    for (CniVersion v : values()) {
      out.add(v.text);
    }
    return List.copyOf(out);
  }

  public boolean atLeast(CniVersion other) {
    return compareTo(other) >= 0;
  }

  @Override
  public String toString() {
    return text;
  }
}
