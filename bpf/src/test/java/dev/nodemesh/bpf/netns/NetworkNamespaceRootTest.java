package dev.nodemesh.bpf.netns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

@RootTest
class NetworkNamespaceRootTest {
  @Test
  void aSocketCreatedInsideBelongsToThatNamespaceAndTheThreadReturnsHome() throws IOException {
    try (TestNetns pod = TestNetns.create("ns");
        NetworkNamespace ns = NetworkNamespace.open(pod.path())) {
      pod.exec("ip", "addr", "add", "10.251.7.1/32", "dev", "lo");
      long home = NetworkNamespace.inodeOf(Path.of("/proc/thread-self/ns/net"));
      ServerSocketChannel server;
      try (NetworkNamespace.Scope in = ns.enter()) {
        assertEquals(ns.inode(), NetworkNamespace.inodeOf(Path.of("/proc/thread-self/ns/net")));
        server = ServerSocketChannel.open();
      }
      assertEquals(home, NetworkNamespace.inodeOf(Path.of("/proc/thread-self/ns/net")));
      assertNotEquals(home, ns.inode());
      // 10.251.7.1 exists only inside the pod namespace, so this bind proves where the socket is.
      try (server) {
        server.bind(new InetSocketAddress("10.251.7.1", 0));
        assertTrue(pod.exec("ss", "-ltn").contains("10.251.7.1"));
      }
    }
  }

  @Test
  void openingSomethingThatIsNotThereNamesThePath() {
    NativeException e =
        assertThrows(
            NativeException.class,
            () -> NetworkNamespace.open(Path.of("/var/run/netns/nm-missing")).close());
    assertTrue(e.getMessage().contains("nm-missing"), e.getMessage());
  }
}
