package io.cm4j.weights.pickle;

import java.nio.ByteBuffer;

/**
 * A {@code numpy.ndarray} as pickled: {@code _reconstruct} makes an empty one, BUILD fills in
 * shape, dtype, memory order and the raw bytes (protocol 5's {@code _frombuffer} does both at
 * once). The bytes are a view of the stream, not a copy.
 */
public final class NumpyArray {
  private long[] shape;
  private NumpyDType dtype;
  private boolean fortranOrder;
  private ByteBuffer data;

  NumpyArray() {}

  NumpyArray(long[] shape, NumpyDType dtype, boolean fortranOrder, ByteBuffer data) {
    fill(shape, dtype, fortranOrder, data);
  }

  void fill(long[] shape, NumpyDType dtype, boolean fortranOrder, ByteBuffer data) {
    this.shape = shape.clone();
    this.dtype = dtype;
    this.fortranOrder = fortranOrder;
    this.data = data.asReadOnlyBuffer();
  }

  /** Whether BUILD gave it contents (an array whose state never came is unusable). */
  public boolean isFilled() {
    return data != null;
  }

  public long[] shape() {
    return shape.clone();
  }

  public NumpyDType dtype() {
    return dtype;
  }

  /** True when the bytes are in column-major (Fortran) order. */
  public boolean fortranOrder() {
    return fortranOrder;
  }

  /** The raw bytes as stored, a fresh read-only view positioned at 0. */
  public ByteBuffer data() {
    return data.duplicate();
  }

  @Override
  public String toString() {
    return isFilled() ? "ndarray(" + dtype + ", " + java.util.Arrays.toString(shape) + ")"
        : "ndarray(unfilled)";
  }
}
