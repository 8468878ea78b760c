package dev.nodemesh.proxy.l7.resilience;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * A Ketama-style consistent-hash ring: each endpoint key is placed at {@link #POINTS_PER_ENDPOINT}
 * points (64-bit hashes of {@code key#i}); a request hash goes to the first point at or after it,
 * wrapping. Adding one endpoint to N moves about 1/(N+1) of the keys, all of them to the new one.
 * Immutable; built when a Service's endpoint set changes.
 */
public final class RingHash {
  /** Points per endpoint: enough that shares are within a few percent of even. */
  public static final int POINTS_PER_ENDPOINT = 160;

  private final long[] points;
  private final int[] owners;
  private final List<String> keys;

  /**
   * @param keys the endpoints' stable keys (e.g. IP:port); index = position in this list
   */
  public RingHash(List<String> keys) {
    this.keys = List.copyOf(keys);
    int n = this.keys.size() * POINTS_PER_ENDPOINT;
    long[] hashes = new long[n];
    int[] who = new int[n];
    int at = 0;
    for (int e = 0; e < this.keys.size(); e++) {
      for (int i = 0; i < POINTS_PER_ENDPOINT; i++) {
        hashes[at] = hash(this.keys.get(e) + "#" + i);
        who[at] = e;
        at++;
      }
    }
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Long.compareUnsigned(hashes[a], hashes[b]));
    points = new long[n];
    owners = new int[n];
    for (int i = 0; i < n; i++) {
      points[i] = hashes[order[i]];
      owners[i] = who[order[i]];
    }
  }

  public List<String> keys() {
    return keys;
  }

  /**
   * The endpoint index for {@code hash}: the owner of the first point at or after it whose owner
   * {@code usable} accepts (ejected endpoints are skipped, their keys spread over the next ones);
   * -1 when the ring is empty or nothing is usable.
   */
  public int lookup(long hash, IntPredicate usable) {
    int n = points.length;
    if (n == 0) {
      return -1;
    }
    int lo = 0;
    int hi = n;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (Long.compareUnsigned(points[mid], hash) < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    for (int i = 0; i < n; i++) {
      int owner = owners[(lo + i) % n];
      if (usable.test(owner)) {
        return owner;
      }
    }
    return -1;
  }

  /** 64-bit FNV-1a of the UTF-8 bytes, finished with SplitMix64's mixer for spread. */
  public static long hash(String s) {
    long h = 0xcbf29ce484222325L;
    for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
      h ^= b & 0xff;
      h *= 0x100000001b3L;
    }
    h ^= h >>> 30;
    h *= 0xbf58476d1ce4e5b9L;
    h ^= h >>> 27;
    h *= 0x94d049bb133111ebL;
    h ^= h >>> 31;
    return h;
  }
}
