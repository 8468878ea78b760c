package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Fuzzes the L7 downstream pipeline from its first byte: the protocol sniffer and then the real
 * HTTP/1.1 pipeline ({@link HttpProxy#installHttp1}: codec with the limits, request-target filter,
 * keep-alive, drain, expect-continue, {@link RequestHandler}) in an EmbeddedChannel, over {@link
 * RequestHandlerTest}'s config (routes to a Service without endpoints and to a missing backend, so
 * nothing is forwarded and the proxy answers every request itself). The input is cut into up to
 * four reads and may end with the client's FIN.
 *
 * <p>Every input must leave: no exception out of the pipeline (EmbeddedChannel rethrows what
 * reaches its tail), an answer that is one of the proxy's own statuses (400, 414 and 431 for what
 * the decoder refused), at most {@value #MAX_HELD} bytes of buffers still held by the open
 * connection, and none once it is closed. Netty's leak detector (paranoid in tests) watches the
 * rest.
 *
 * <p>Regression mode replays {@code src/test/resources/.../Http1HeadFuzzTestInputs/
 * answersOrRefusesEveryHead}; {@code scripts/fuzz} mutates it.
 */
class Http1HeadFuzzTest {
  /** What one idle connection may still hold: a head up to the limits, and slack for the codec. */
  static final int MAX_HELD = 256 * 1024;

  private static final Set<Integer> LOCAL_STATUSES =
      Set.of(100, 200, 400, 403, 404, 413, 414, 417, 429, 431, 500, 502, 503, 504);
  private static final String PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  private static final Pattern STATUS_LINE = Pattern.compile("^HTTP/1\\.[01] (\\d{3}) ");

  private static boolean ready;

  /**
   * The config and context, made on the first input rather than in {@code @BeforeAll}: when
   * fuzzing, Jazzer installs its agent after {@code @BeforeAll} and re-instruments classes loaded
   * before, which broke the {@code DataPlane} record (NoSuchFieldError on its accessor).
   */
  private static synchronized void setUp() throws Exception {
    if (ready) {
      return;
    }
    Path dir = Files.createTempDirectory("nodemesh-h1-fuzz");
    RequestHandlerTest.setUp(dir);
    try (var files = Files.list(dir)) {
      for (Path p : files.toList()) {
        Files.delete(p);
      }
    }
    Files.delete(dir);
    ready = true;
  }

  @FuzzTest(maxDuration = "30s")
  void answersOrRefusesEveryHead(FuzzedDataProvider data) throws Exception {
    setUp();
    int reads = data.consumeInt(1, 4);
    boolean fin = data.consumeBoolean();
    byte[] input = data.consumeRemainingAsBytes();

    TrackingAllocator alloc = new TrackingAllocator();
    EmbeddedChannel ch = new EmbeddedChannel();
    ch.config().setAllocator(alloc);
    AtomicBoolean l4 = new AtomicBoolean();
    ch.pipeline()
        .addLast(new HttpProxy.Sniffer(RequestHandlerTest.context(), true, () -> l4.set(true)));
    try {
      int step = Math.max(1, (input.length + reads - 1) / reads);
      for (int at = 0; at < input.length && ch.isOpen(); at += step) {
        int n = Math.min(step, input.length - at);
        ch.writeInbound(alloc.buffer(n).writeBytes(input, at, n));
        ch.runPendingTasks();
      }
      if (fin && ch.isOpen()) {
        ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        ch.runPendingTasks();
      }
      String out = drainOutbound(ch);
      assertTrue(!l4.get(), "a port that promises HTTP never falls back to L4");
      boolean h2 = new String(input, StandardCharsets.ISO_8859_1).startsWith(PREFACE);
      if (!h2 && !out.isEmpty()) {
        Matcher m = STATUS_LINE.matcher(out);
        assertTrue(m.find(), "not a status line: " + first(out));
        int status = Integer.parseInt(m.group(1));
        assertTrue(LOCAL_STATUSES.contains(status), "unexpected status: " + first(out));
      }
      if (ch.isOpen()) {
        assertTrue(
            alloc.liveBytes() <= MAX_HELD,
            "an open connection holds " + alloc.liveBytes() + " bytes after the input");
      }
    } finally {
      ch.finishAndReleaseAll();
    }
    assertEquals(List.of(), alloc.unreleased(), "buffers left unreleased after the close");
  }

  /** Everything written back, as text; the buffers are released. */
  static String drainOutbound(EmbeddedChannel ch) {
    StringBuilder out = new StringBuilder();
    for (Object o; (o = ch.readOutbound()) != null; ) {
      if (o instanceof ByteBuf b) {
        try {
          out.append(b.toString(StandardCharsets.ISO_8859_1));
        } finally {
          b.release();
        }
      } else {
        io.netty.util.ReferenceCountUtil.release(o);
      }
    }
    return out.toString();
  }

  private static String first(String out) {
    int eol = out.indexOf('\n');
    return eol < 0 ? out : out.substring(0, eol);
  }
}
