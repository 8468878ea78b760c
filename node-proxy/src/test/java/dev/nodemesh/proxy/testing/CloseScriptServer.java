package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP server inside a pod namespace that ends each connection the way its client asks, for tests
 * of how the proxy passes on every order of FIN and RST. The client's first line names the script:
 *
 * <ul>
 *   <li>{@code echo}: echo until EOF, then close (the client half-closes first);
 *   <li>{@code fin-first}: write {@code bye\n}, half-close, read until EOF, then close (the server
 *       half-closes first);
 *   <li>{@code rst}: write {@code x\n}, then close with an RST;
 *   <li>{@code hold}: read until EOF, then keep the connection open (half-closed by the client
 *       only) until {@link #close};
 *   <li>{@code hold-fin}: half-close at once, read until EOF, then keep the (now fully shut down)
 *       socket open until {@link #close}.
 * </ul>
 *
 * One thread per connection; {@link #close} closes the listener and every held socket.
 */
public final class CloseScriptServer implements AutoCloseable {
  private final ServerSocketChannel server;
  private final List<SocketChannel> held = new CopyOnWriteArrayList<>();
  private final Thread acceptor;

  private CloseScriptServer(ServerSocketChannel server, String name) {
    this.server = server;
    this.acceptor = new Thread(this::acceptLoop, "close-script-" + name);
    acceptor.setDaemon(true);
  }

  public static CloseScriptServer start(Path netns, int port, String name) throws IOException {
    ServerSocketChannel s;
    try (NetworkNamespace ns = NetworkNamespace.open(netns);
        NetworkNamespace.Scope in = ns.enter()) {
      s = ServerSocketChannel.open();
    }
    s.bind(new InetSocketAddress("0.0.0.0", port), 1024);
    CloseScriptServer t = new CloseScriptServer(s, name);
    t.acceptor.start();
    return t;
  }

  /** Connections kept open by {@code hold} and {@code hold-fin} so far. */
  public int held() {
    return held.size();
  }

  private void acceptLoop() {
    while (server.isOpen()) {
      try {
        SocketChannel c = server.accept();
        Thread t = new Thread(() -> handle(c), "close-script-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  private void handle(SocketChannel c) {
    boolean keep = false;
    try {
      String script = readLine(c);
      switch (script) {
        case "echo" -> drain(c, true);
        case "fin-first" -> {
          write(c, "bye\n");
          c.shutdownOutput();
          drain(c, false);
        }
        case "rst" -> {
          write(c, "x\n");
          c.setOption(StandardSocketOptions.SO_LINGER, 0);
        }
        case "hold" -> {
          drain(c, false);
          keep = true;
        }
        case "hold-fin" -> {
          c.shutdownOutput();
          drain(c, false);
          keep = true;
        }
        default -> write(c, "unknown script " + script + "\n");
      }
    } catch (IOException e) {
      // The client reset or went away: nothing to do in a test server.
    } finally {
      if (keep && server.isOpen()) {
        held.add(c);
      } else {
        try {
          c.close();
        } catch (IOException e) {
          // already gone
        }
      }
    }
  }

  private static String readLine(SocketChannel c) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    ByteBuffer one = ByteBuffer.allocate(1);
    while (true) {
      one.clear();
      if (c.read(one) < 0) {
        throw new IOException("EOF before the script line");
      }
      byte b = one.get(0);
      if (b == '\n') {
        return line.toString(StandardCharsets.US_ASCII);
      }
      line.write(b);
    }
  }

  private static void write(SocketChannel c, String s) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII));
    while (b.hasRemaining()) {
      c.write(b);
    }
  }

  /** Reads until EOF, echoing what it reads when {@code echo}. */
  private static void drain(SocketChannel c, boolean echo) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    while (c.read(buf) >= 0) {
      buf.flip();
      while (echo && buf.hasRemaining()) {
        c.write(buf);
      }
      buf.clear();
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (SocketChannel c : held) {
      c.close();
    }
    held.clear();
  }
}
