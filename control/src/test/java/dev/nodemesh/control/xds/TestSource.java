package dev.nodemesh.control.xds;

import dev.nodemesh.control.source.Source;
import dev.nodemesh.control.store.ResourceStore;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/** A source the test writes to directly, on the control-plane executor like a real one. */
final class TestSource implements Source {
  private volatile ResourceStore store;
  private volatile Executor executor;
  private volatile boolean ready;

  @Override
  public void start(ResourceStore store, Executor executor) {
    this.store = store;
    this.executor = executor;
    this.ready = false;
  }

  /**
   * Applies {@code change} (the first one makes the source ready) on the executor and waits until
   * it ran.
   */
  long apply(Consumer<ResourceStore> change) throws Exception {
    CompletableFuture<Long> done = new CompletableFuture<>();
    executor.execute(
        () -> {
          change.accept(store);
          ready = true;
          done.complete(store.revision());
        });
    return done.get(10, TimeUnit.SECONDS);
  }

  @Override
  public boolean ready() {
    return ready;
  }

  @Override
  public String describe() {
    return "test";
  }

  @Override
  public void close() {}
}
