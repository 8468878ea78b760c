package dev.nodemesh.proxy.budget;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.agent.EnrolledPod;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;

/** Enrolled pods for unit tests: the test's own network namespace, never entered or closed. */
public final class TestPods {
  private TestPods() {}

  /** Pod {@code default/<name>} with uid {@code uid-<name>}. */
  public static EnrolledPod pod(String name) {
    try {
      return new EnrolledPod(
          "uid-" + name,
          name,
          "default",
          "/proc/self/ns/net",
          List.of(InetAddress.getByName("10.0.0.1")),
          NetworkNamespace.home());
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }
}
