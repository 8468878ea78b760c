package dev.nodemesh.proxy.testing;

import dev.nodemesh.proxy.testing.PodSockets.Conn;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2FrameReader;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameAdapter;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An h2c (prior knowledge) client that writes frames byte by byte as a hostile peer would, for root
 * tests of the proxy's HTTP/2 defences: well-formed requests, and floods no real client sends
 * (HEADERS immediately reset, header blocks continued without end). Frames are built by hand, with
 * HPACK literals that never touch the dynamic table, so a flood costs the test no encoder state;
 * what the server sends is decoded with Netty's frame reader on a thread of its own, which records
 * each stream's {@code :status}, the GOAWAY's error code and whether the server closed.
 *
 * <p>Limits: one blocking socket (a write blocks while the server does not read); no flow control
 * beyond the defaults (answers must fit the 64 KiB initial windows); SETTINGS are acknowledged,
 * nothing else is answered.
 */
public final class RawH2Client implements AutoCloseable {
  public static final int HEADERS = 0x1;
  public static final int RST_STREAM = 0x3;
  public static final int SETTINGS = 0x4;
  public static final int PING = 0x6;
  public static final int CONTINUATION = 0x9;
  public static final int END_STREAM = 0x1;
  public static final int END_HEADERS = 0x4;
  public static final int ACK = 0x1;
  public static final long CANCEL = 0x8;

  private static final byte[] PREFACE =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  private final Closeable socket;
  private final InputStream in;
  private final OutputStream out;
  private final Thread reader;
  private final Map<Integer, String> statuses = new ConcurrentHashMap<>();
  private final CountDownLatch closed = new CountDownLatch(1);
  private final AtomicInteger pingAcks = new AtomicInteger();
  private volatile long goAwayError = -1;
  private volatile String goAwayDebug = "";

  private RawH2Client(Closeable socket, InputStream in, OutputStream out) {
    this.socket = socket;
    this.in = in;
    this.out = out;
    this.reader = new Thread(this::readLoop, "raw-h2-reader");
    reader.setDaemon(true);
  }

  /**
   * Connects from {@code pod}'s app (h2c; {@link TestNode#podConnect}, so in either interception
   * mode) and sends the client preface and an empty SETTINGS.
   */
  public static RawH2Client open(TestNode node, String pod, String ip, int port)
      throws IOException {
    Conn conn = node.podConnect(pod, ip, port);
    RawH2Client c;
    try {
      conn.setReadTimeout(Duration.ZERO); // the reader waits for as long as the server says nothing
      // Each stream writes a whole array under a lock of its own, as a socket's streams do.
      c = new RawH2Client(conn, Channels.newInputStream(conn), Channels.newOutputStream(conn));
    } catch (IOException | RuntimeException e) {
      conn.close();
      throw e;
    }
    return c.start();
  }

  /**
   * Speaks HTTP/2 over {@code socket}, connected (a TLS socket after its handshake, for HBONE), and
   * sends the client preface and an empty SETTINGS; the socket is this client's from now on.
   */
  public static RawH2Client over(Socket socket) throws IOException {
    RawH2Client c;
    try {
      socket.setSoTimeout(0); // the reader waits for as long as the server says nothing
      c = new RawH2Client(socket, socket.getInputStream(), socket.getOutputStream());
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
    return c.start();
  }

  private RawH2Client start() throws IOException {
    try {
      ByteArrayOutputStream preface = new ByteArrayOutputStream();
      preface.write(PREFACE, 0, PREFACE.length);
      frame(preface, 0, SETTINGS, 0, 0, new byte[0]);
      write(preface.toByteArray());
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
    reader.start();
    return this;
  }

  /** Appends one frame: the 9-byte header, then {@code payload} ({@code length} of it). */
  public static void frame(
      ByteArrayOutputStream out, int length, int type, int flags, int stream, byte[] payload) {
    out.write(length >>> 16);
    out.write(length >>> 8);
    out.write(length);
    out.write(type);
    out.write(flags);
    out.write((stream >>> 24) & 0x7f);
    out.write(stream >>> 16);
    out.write(stream >>> 8);
    out.write(stream);
    out.write(payload, 0, length);
  }

  /**
   * The header block of {@code GET http://<authority><path>}: :method and :scheme from HPACK's
   * static table, :authority and :path as literals without indexing (RFC 7541 6.2.2).
   */
  public static byte[] get(String authority, String path) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.write(0x82); // :method GET
    b.write(0x86); // :scheme http
    literal(b, 1, authority);
    literal(b, 4, path);
    return b.toByteArray();
  }

  /** The header block of {@code CONNECT <authority>} (an HBONE tunnel stream). */
  public static byte[] connect(String authority) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    literal(b, 2, "CONNECT");
    literal(b, 1, authority);
    return b.toByteArray();
  }

  private static void literal(ByteArrayOutputStream b, int nameIndex, String value) {
    byte[] v = value.getBytes(StandardCharsets.US_ASCII);
    if (nameIndex > 14 || v.length > 126) {
      throw new IllegalArgumentException("short literals only");
    }
    b.write(nameIndex);
    b.write(v.length);
    b.write(v, 0, v.length);
  }

  /** HEADERS for a GET on {@code stream}, END_STREAM set, then RST_STREAM(CANCEL) on it. */
  public static void headersThenReset(ByteArrayOutputStream out, int stream, byte[] block) {
    frame(out, block.length, HEADERS, END_HEADERS | END_STREAM, stream, block);
    frame(out, 4, RST_STREAM, 0, stream, new byte[] {0, 0, 0, (byte) CANCEL});
  }

  /** A rapid-reset flood: {@code pairs} of {@link #headersThenReset}, streams 1, 3, 5... */
  public static byte[] rapidReset(byte[] block, int pairs) {
    ByteArrayOutputStream flood = new ByteArrayOutputStream();
    for (int i = 0; i < pairs; i++) {
      headersThenReset(flood, 1 + 2 * i, block);
    }
    return flood.toByteArray();
  }

  /**
   * A CONTINUATION flood on stream 1: {@code block}'s first byte in HEADERS without END_HEADERS,
   * its rest in one CONTINUATION, then {@code empty} empty CONTINUATIONs, none ending the block.
   */
  public static byte[] continuationFlood(byte[] block, int empty) {
    ByteArrayOutputStream flood = new ByteArrayOutputStream();
    frame(flood, 1, HEADERS, END_STREAM, 1, block);
    byte[] rest = new byte[block.length - 1];
    System.arraycopy(block, 1, rest, 0, rest.length);
    frame(flood, rest.length, CONTINUATION, 0, 1, rest);
    for (int i = 0; i < empty; i++) {
      frame(flood, 0, CONTINUATION, 0, 1, new byte[0]);
    }
    return flood.toByteArray();
  }

  /**
   * Writes {@code bytes} in 64 KiB pieces until all are written or the server has closed the
   * connection; returns how many were written.
   */
  public long writeUntilClosed(byte[] bytes) {
    long sent = 0;
    for (int at = 0; at < bytes.length; at += 64 << 10) {
      int n = Math.min(64 << 10, bytes.length - at);
      byte[] piece = new byte[n];
      System.arraycopy(bytes, at, piece, 0, n);
      try {
        write(piece);
      } catch (IOException closedByTheServer) {
        return sent;
      }
      sent += n;
    }
    return sent;
  }

  /** Sends a complete GET on {@code stream}. */
  public void get(int stream, String authority, String path) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] block = get(authority, path);
    frame(out, block.length, HEADERS, END_HEADERS | END_STREAM, stream, block);
    write(out.toByteArray());
  }

  /** Sends a PING; {@link #pingAcks} counts the answers. */
  public void ping() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    frame(out, 8, PING, 0, 0, new byte[8]);
    write(out.toByteArray());
  }

  /** PING ACKs received so far. */
  public int pingAcks() {
    return pingAcks.get();
  }

  /** Waits up to {@code wait} for at least {@code n} PING ACKs; whether they came. */
  public boolean awaitPingAcks(int n, Duration wait) throws InterruptedException {
    long until = System.nanoTime() + wait.toNanos();
    while (pingAcks.get() < n && System.nanoTime() < until) {
      if (closed.await(20, TimeUnit.MILLISECONDS)) {
        break;
      }
    }
    return pingAcks.get() >= n;
  }

  /** Writes raw bytes; an {@link IOException} once the server has closed the connection. */
  public void write(byte[] bytes) throws IOException {
    // One call, so the reader's SETTINGS ACK never lands inside a frame: a socket's stream, a TLS
    // socket's and a channel's stream (Channels.newOutputStream) each write a whole buffer under
    // their write lock.
    out.write(bytes);
    out.flush();
  }

  /** The {@code :status} answered on {@code stream}, waiting up to {@code wait}; null if none. */
  public String status(int stream, Duration wait) throws InterruptedException {
    long until = System.nanoTime() + wait.toNanos();
    while (!statuses.containsKey(stream) && System.nanoTime() < until) {
      if (closed.await(20, TimeUnit.MILLISECONDS)) {
        break;
      }
    }
    return statuses.get(stream);
  }

  /** Whether the server closed the connection within {@code wait}. */
  public boolean closedWithin(Duration wait) throws InterruptedException {
    return closed.await(wait.toMillis(), TimeUnit.MILLISECONDS);
  }

  public boolean isClosed() {
    return closed.getCount() == 0;
  }

  /** The error code of the server's GOAWAY, or -1 when none came. */
  public long goAwayError() {
    return goAwayError;
  }

  public String goAwayDebug() {
    return goAwayDebug;
  }

  private void readLoop() {
    EmbeddedChannel sink = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
    ChannelHandlerContext ctx = sink.pipeline().firstContext();
    DefaultHttp2FrameReader frames = new DefaultHttp2FrameReader();
    ByteBuf received = Unpooled.buffer();
    byte[] chunk = new byte[16 << 10];
    Listener listener = new Listener();
    try {
      int n;
      while ((n = in.read(chunk)) >= 0) {
        received.writeBytes(chunk, 0, n);
        frames.readFrame(ctx, received, listener);
        received.discardReadBytes();
      }
    } catch (IOException | Http2Exception | RuntimeException e) {
      // reset by the server or closed by the test: the connection is over either way
    } finally {
      received.release();
      frames.close();
      sink.finishAndReleaseAll();
      closed.countDown();
    }
  }

  private final class Listener extends Http2FrameAdapter {
    @Override
    public void onHeadersRead(
        ChannelHandlerContext ctx, int id, Http2Headers h, int padding, boolean endStream) {
      if (h.status() != null) {
        statuses.putIfAbsent(id, h.status().toString());
      }
    }

    @Override
    public void onHeadersRead(
        ChannelHandlerContext ctx,
        int id,
        Http2Headers h,
        int dependency,
        short weight,
        boolean exclusive,
        int padding,
        boolean endStream) {
      onHeadersRead(ctx, id, h, padding, endStream);
    }

    @Override
    public void onSettingsRead(ChannelHandlerContext ctx, Http2Settings settings) {
      ByteArrayOutputStream ack = new ByteArrayOutputStream();
      frame(ack, 0, SETTINGS, ACK, 0, new byte[0]);
      try {
        write(ack.toByteArray());
      } catch (IOException e) {
        // the server is gone; the read loop sees it next
      }
    }

    @Override
    public void onPingAckRead(ChannelHandlerContext ctx, long data) {
      pingAcks.incrementAndGet();
    }

    @Override
    public void onGoAwayRead(ChannelHandlerContext ctx, int last, long errorCode, ByteBuf debug) {
      goAwayDebug = debug.toString(StandardCharsets.UTF_8);
      goAwayError = errorCode;
    }
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException e) {
      // closing anyway
    }
  }
}
