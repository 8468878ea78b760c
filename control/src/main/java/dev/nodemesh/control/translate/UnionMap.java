package dev.nodemesh.control.translate;

import java.util.AbstractMap;
import java.util.AbstractSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * A read-only map over two maps with disjoint keys, without copying either: a node's view is the
 * view every node shares plus the node's own few workloads, and a thousand nodes must not each hold
 * a copy of the shared part (nor the server a copy per stream of what each node holds).
 */
final class UnionMap<V> extends AbstractMap<String, V> {
  private final Map<String, V> shared;
  private final Map<String, V> own;

  UnionMap(Map<String, V> shared, Map<String, V> own) {
    this.shared = shared;
    this.own = own;
  }

  @Override
  public @Nullable V get(Object key) {
    V v = own.get(key);
    return v != null ? v : shared.get(key);
  }

  @Override
  public boolean containsKey(Object key) {
    return own.containsKey(key) || shared.containsKey(key);
  }

  @Override
  public int size() {
    return shared.size() + own.size();
  }

  @Override
  public Set<Entry<String, V>> entrySet() {
    return new AbstractSet<>() {
      @Override
      public Iterator<Entry<String, V>> iterator() {
        Iterator<Entry<String, V>> a = own.entrySet().iterator();
        Iterator<Entry<String, V>> b = shared.entrySet().iterator();
        return new Iterator<>() {
          @Override
          public boolean hasNext() {
            return a.hasNext() || b.hasNext();
          }

          @Override
          public Entry<String, V> next() {
            return a.hasNext() ? a.next() : b.next();
          }
        };
      }

      @Override
      public int size() {
        return UnionMap.this.size();
      }
    };
  }
}
