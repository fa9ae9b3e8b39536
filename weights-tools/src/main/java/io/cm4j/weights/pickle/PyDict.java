package io.cm4j.weights.pickle;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A Python dict or {@code collections.OrderedDict}, in insertion order. Keys are restricted to
 * strings, integers, booleans and None, so hashing a key never recurses. Identity equality and
 * a shallow {@code toString} (see {@link PyTuple}).
 */
public final class PyDict {
  final LinkedHashMap<Object, Object> map = new LinkedHashMap<>();

  public int size() {
    return map.size();
  }

  public Object get(Object key) {
    return map.get(key);
  }

  /** The entries, read-only, in insertion order. */
  public Map<Object, Object> entries() {
    return Collections.unmodifiableMap(map);
  }

  @Override
  public String toString() {
    return "dict[" + map.size() + "]";
  }
}
