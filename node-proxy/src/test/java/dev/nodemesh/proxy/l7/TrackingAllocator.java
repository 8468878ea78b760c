package dev.nodemesh.proxy.l7;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import java.util.ArrayList;
import java.util.List;

/**
 * An allocator for the fuzz tests' EmbeddedChannels that remembers every buffer it hands out, so a
 * test can say, right after one input, whether the pipeline still holds memory it should not
 * ({@link #liveBytes}) and whether anything was never released ({@link #unreleased}). Netty's leak
 * detector (paranoid in tests) reports a leak only when the garbage collector finds the buffer,
 * which may be inputs later; this names the input at once. Derived buffers (slices, duplicates)
 * share their parent's count, so checking the buffers made here covers them.
 *
 * <p>Limits: only buffers allocated through the channel's allocator are seen; HTTP/2 stream child
 * channels allocate from Netty's default allocator, which the leak detector still watches.
 */
final class TrackingAllocator implements ByteBufAllocator {
  private final ByteBufAllocator delegate = new UnpooledByteBufAllocator(false);
  private final List<ByteBuf> made = new ArrayList<>();

  /** The capacity of the buffers not yet released. */
  long liveBytes() {
    long n = 0;
    for (ByteBuf b : made) {
      if (b.refCnt() > 0) {
        n += b.capacity();
      }
    }
    return n;
  }

  /** The buffers not yet released, described. */
  List<String> unreleased() {
    List<String> out = new ArrayList<>();
    for (ByteBuf b : made) {
      if (b.refCnt() > 0) {
        out.add(b.toString());
      }
    }
    return out;
  }

  private <T extends ByteBuf> T track(T b) {
    made.add(b);
    return b;
  }

  @Override
  public ByteBuf buffer() {
    return track(delegate.buffer());
  }

  @Override
  public ByteBuf buffer(int initialCapacity) {
    return track(delegate.buffer(initialCapacity));
  }

  @Override
  public ByteBuf buffer(int initialCapacity, int maxCapacity) {
    return track(delegate.buffer(initialCapacity, maxCapacity));
  }

  @Override
  public ByteBuf ioBuffer() {
    return track(delegate.ioBuffer());
  }

  @Override
  public ByteBuf ioBuffer(int initialCapacity) {
    return track(delegate.ioBuffer(initialCapacity));
  }

  @Override
  public ByteBuf ioBuffer(int initialCapacity, int maxCapacity) {
    return track(delegate.ioBuffer(initialCapacity, maxCapacity));
  }

  @Override
  public ByteBuf heapBuffer() {
    return track(delegate.heapBuffer());
  }

  @Override
  public ByteBuf heapBuffer(int initialCapacity) {
    return track(delegate.heapBuffer(initialCapacity));
  }

  @Override
  public ByteBuf heapBuffer(int initialCapacity, int maxCapacity) {
    return track(delegate.heapBuffer(initialCapacity, maxCapacity));
  }

  @Override
  public ByteBuf directBuffer() {
    return track(delegate.directBuffer());
  }

  @Override
  public ByteBuf directBuffer(int initialCapacity) {
    return track(delegate.directBuffer(initialCapacity));
  }

  @Override
  public ByteBuf directBuffer(int initialCapacity, int maxCapacity) {
    return track(delegate.directBuffer(initialCapacity, maxCapacity));
  }

  @Override
  public CompositeByteBuf compositeBuffer() {
    return track(delegate.compositeBuffer());
  }

  @Override
  public CompositeByteBuf compositeBuffer(int maxNumComponents) {
    return track(delegate.compositeBuffer(maxNumComponents));
  }

  @Override
  public CompositeByteBuf compositeHeapBuffer() {
    return track(delegate.compositeHeapBuffer());
  }

  @Override
  public CompositeByteBuf compositeHeapBuffer(int maxNumComponents) {
    return track(delegate.compositeHeapBuffer(maxNumComponents));
  }

  @Override
  public CompositeByteBuf compositeDirectBuffer() {
    return track(delegate.compositeDirectBuffer());
  }

  @Override
  public CompositeByteBuf compositeDirectBuffer(int maxNumComponents) {
    return track(delegate.compositeDirectBuffer(maxNumComponents));
  }

  @Override
  public boolean isDirectBufferPooled() {
    return false;
  }

  @Override
  public int calculateNewCapacity(int minNewCapacity, int maxCapacity) {
    return delegate.calculateNewCapacity(minNewCapacity, maxCapacity);
  }
}
