package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A blocking TCP server inside a pod namespace, one thread per connection, for tests. NAME writes
 * the pod's name and the peer it saw, then closes; ECHO echoes until EOF and then closes its side;
 * LINES answers each line with {@code <name>:<line>} until EOF (a conversation on one connection).
 */
public final class TestServer implements AutoCloseable {
  public enum Mode {
    NAME,
    ECHO,
    LINES
  }

  private final ServerSocketChannel server;
  private final String name;
  private final Mode mode;
  private final List<String> peers = new CopyOnWriteArrayList<>();
  private final Thread acceptor;

  private TestServer(ServerSocketChannel server, String name, Mode mode) {
    this.server = server;
    this.name = name;
    this.mode = mode;
    this.acceptor = new Thread(this::acceptLoop, "test-server-" + name);
    acceptor.setDaemon(true);
  }

  public static TestServer start(Path netns, int port, String name, Mode mode) throws IOException {
    ServerSocketChannel s;
    try (NetworkNamespace ns = NetworkNamespace.open(netns);
        NetworkNamespace.Scope in = ns.enter()) {
      s = ServerSocketChannel.open();
    }
    s.bind(new InetSocketAddress("0.0.0.0", port), 4096);
    TestServer t = new TestServer(s, name, mode);
    t.acceptor.start();
    return t;
  }

  /** The peer address of every connection accepted so far (ip only). */
  public List<String> peers() {
    return peers;
  }

  private void acceptLoop() {
    while (server.isOpen()) {
      try {
        SocketChannel c = server.accept();
        peers.add(((InetSocketAddress) c.getRemoteAddress()).getAddress().getHostAddress());
        Thread t = new Thread(() -> handle(c), "test-conn-" + name);
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  private void handle(SocketChannel c) {
    try (c) {
      if (mode == Mode.NAME) {
        String peer = ((InetSocketAddress) c.getRemoteAddress()).getAddress().getHostAddress();
        c.write(ByteBuffer.wrap((name + " " + peer + "\n").getBytes(StandardCharsets.UTF_8)));
        return;
      }
      if (mode == Mode.LINES) {
        answerLines(c);
        return;
      }
      ByteBuffer buf = ByteBuffer.allocateDirect(64 * 1024);
      while (c.read(buf) >= 0) {
        buf.flip();
        while (buf.hasRemaining()) {
          c.write(buf);
        }
        buf.clear();
      }
      c.shutdownOutput();
    } catch (IOException e) {
      // The client went away; nothing to do in a test server.
    }
  }

  private void answerLines(SocketChannel c) throws IOException {
    BufferedReader in =
        new BufferedReader(
            new InputStreamReader(c.socket().getInputStream(), StandardCharsets.UTF_8));
    Writer out = new OutputStreamWriter(c.socket().getOutputStream(), StandardCharsets.UTF_8);
    for (String l = in.readLine(); l != null; l = in.readLine()) {
      out.write(name + ":" + l + "\n");
      out.flush();
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
  }
}
