package io.cm4j.weights;

import java.util.Arrays;

/** A tensor's name, element type and shape, known without reading (or converting) its data. */
public record TensorInfo(String name, DType dtype, long[] shape) {

  public TensorInfo {
    shape = shape.clone();
  }

  /** The shape; a copy. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of elements (1 for a scalar); ArithmeticException past 2^63 (no reader makes one). */
  public long numel() {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  /** Size of the data in bytes. */
  public long nbytes() {
    return numel() * dtype.size();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo && ((TensorInfo) o).name.equals(name)
        && ((TensorInfo) o).dtype == dtype && Arrays.equals(((TensorInfo) o).shape, shape);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
