package io.cm4j.weights;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * One named tensor of a checkpoint: element type, shape, and its raw little-endian bytes
 * (row-major). For memory-mapped files {@code data} is a read-only view into the mapping, so
 * it stays valid only while the file it came from is open.
 */
public record TensorEntry(String name, DType dtype, long[] shape, ByteBuffer data) {

  public TensorEntry {
    shape = shape.clone();
  }

  /** Number of elements: the product of the shape (1 for a scalar). */
  public long numel() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** The shape; a copy, since records hand out their array otherwise. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
