package dev.nodemesh.proxy.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * tcpdump on a {@link TwoNodeCluster}'s underlay (inside node-1's namespace), writing every packet
 * to a pcap file as it reads it: the HBONE tests look in it for what must never cross in plaintext.
 * {@link #start} returns once tcpdump listens; {@link #close} stops it by its own PID (SIGTERM, so
 * it flushes; killed if it has not exited within 10 s).
 */
public final class UnderlayCapture implements AutoCloseable {
  private static final Duration WAIT = Duration.ofSeconds(60);

  private final Process tcpdump;
  private final Path pcap;

  private UnderlayCapture(Process tcpdump, Path pcap) {
    this.tcpdump = tcpdump;
    this.pcap = pcap;
  }

  /**
   * Starts capturing to {@code pcap} ({@code log} takes tcpdump's output) and waits until ready.
   */
  public static UnderlayCapture start(TwoNodeCluster cluster, Path pcap, Path log)
      throws Exception {
    Process tcpdump =
        new ProcessBuilder(
                "ip",
                "netns",
                "exec",
                cluster.node1.nodeNetns().name(),
                "tcpdump",
                "--immediate-mode",
                "-i",
                cluster.underlay(),
                "-n",
                "-U",
                "-s",
                "0",
                "-w",
                pcap.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    UnderlayCapture c = new UnderlayCapture(tcpdump, pcap);
    try {
      Await.until(
          WAIT,
          "tcpdump ready",
          () -> Files.exists(log) && readQuietly(log).contains("listening on"));
    } catch (Exception | AssertionError e) {
      c.close();
      throw e;
    }
    return c;
  }

  /**
   * Waits until the capture holds more than {@code bytes}: packets reach the file as tcpdump reads
   * them, so a test waits for them rather than cut the capture short.
   */
  public void awaitMoreThan(long bytes, String what) throws Exception {
    Await.until(WAIT, what, () -> Files.size(pcap) > bytes);
  }

  /** The capture file's bytes (complete once closed). */
  public byte[] bytes() throws IOException {
    return Files.readAllBytes(pcap);
  }

  /** Whether {@code needle} occurs anywhere in {@code hay}. */
  public static boolean contains(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  private static String readQuietly(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      return "";
    }
  }

  @Override
  public void close() throws InterruptedException {
    tcpdump.destroy(); // SIGTERM to tcpdump's own PID: it flushes and exits
    if (!tcpdump.waitFor(10, TimeUnit.SECONDS)) {
      tcpdump.destroyForcibly();
    }
  }
}
