package io.cm4j.weights.pickle;

/**
 * A Python tuple. Like the other containers here it has identity equality and a shallow
 * {@code toString}: a pickle can build cycles and million-deep nesting, so nothing ever walks
 * a value graph recursively.
 */
public final class PyTuple {
  private final Object[] items;

  PyTuple(Object[] items) {
    this.items = items;
  }

  public int size() {
    return items.length;
  }

  public Object get(int i) {
    return items[i];
  }

  @Override
  public String toString() {
    return "tuple[" + items.length + "]";
  }
}
