package io.cm4j.weights.pickle;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** A Python list; identity equality and a shallow {@code toString} (see {@link PyTuple}). */
public final class PyList {
  final ArrayList<Object> items = new ArrayList<>();

  public int size() {
    return items.size();
  }

  public Object get(int i) {
    return items.get(i);
  }

  /** The items, read-only. */
  public List<Object> items() {
    return Collections.unmodifiableList(items);
  }

  @Override
  public String toString() {
    return "list[" + items.size() + "]";
  }
}
