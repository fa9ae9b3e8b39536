package io.cm4j;

import io.cm4j.weights.DType;
import io.cm4j.weights.Half;
import io.cm4j.weights.TensorEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * A dense row-major float32 tensor in direct (off-heap) memory, so native code reads and writes
 * it in place. The shape is fixed; the values are mutable through {@link #buffer()}. Not
 * thread-safe for concurrent writes.
 */
public final class FloatTensor {
  private final long[] shape;
  private final FloatBuffer data; // direct, native order, position 0, limit numel

  private FloatTensor(long[] shape, FloatBuffer data) {
    this.shape = shape;
    this.data = data;
  }

  /** A zero-filled tensor. */
  public static FloatTensor zeros(long... shape) {
    int n = checkedNumel(shape);
    FloatBuffer data =
        ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
    return new FloatTensor(shape.clone(), data);
  }

  /** A tensor holding a copy of {@code values} (row-major, exactly numel(shape) of them). */
  public static FloatTensor of(long[] shape, float[] values) {
    FloatTensor t = zeros(shape);
    if (values.length != t.data.capacity()) {
      throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs "
          + t.data.capacity() + " values, found " + values.length);
    }
    t.data.put(0, values);
    return t;
  }

  /**
   * A tensor over a checkpoint tensor: F32 data already in native order and 4-byte aligned
   * (the usual case for a memory-mapped safetensors file) is used in place, without a copy,
   * read-only, and valid only while that file is open; anything else (F16, BF16, unaligned data)
   * is converted into a new tensor.
   *
   * @throws IllegalArgumentException when the dtype is not a float type, or the data's size
   *     is not the shape's (native code would read past it)
   */
  public static FloatTensor of(TensorEntry entry) {
    long[] shape = entry.shape();
    int n = checkedNumel(shape);
    ByteBuffer bytes = entry.data().slice().order(ByteOrder.LITTLE_ENDIAN);
    DType dtype = entry.dtype();
    if ((dtype == DType.F32 || dtype == DType.F16 || dtype == DType.BF16)
        && bytes.remaining() != (long) n * dtype.size()) {
      throw new IllegalArgumentException(entry.name() + ": shape " + Arrays.toString(shape)
          + " in " + dtype + " needs " + (long) n * dtype.size() + " bytes, found "
          + bytes.remaining());
    }
    switch (dtype) {
      case F32:
        if (bytes.isDirect() && bytes.alignmentOffset(0, 4) == 0
            && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
          return new FloatTensor(shape, bytes.asFloatBuffer());
        }
        FloatTensor copy = zeros(shape);
        copy.data.put(bytes.asFloatBuffer());
        copy.data.rewind();
        return copy;
      case F16:
      case BF16:
        FloatTensor out = zeros(shape);
        for (int i = 0; i < n; i++) {
          short bits = bytes.getShort(2 * i);
          out.data.put(i, dtype == DType.BF16 ? Half.bf16ToFloat(bits) : Half.toFloat(bits));
        }
        return out;
      default:
        throw new IllegalArgumentException(entry.name() + ": expected a float tensor (F32, F16 "
            + "or BF16), found " + dtype);
    }
  }

  private static int checkedNumel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    if (n > (Integer.MAX_VALUE - 8) / 4) {
      throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has " + n
          + " elements, more than one tensor can hold");
    }
    return (int) n;
  }

  /** The shape (a copy). */
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  /** Size of dimension {@code i}. */
  public long dim(int i) {
    return shape[i];
  }

  /** Number of elements. */
  public int numel() {
    return data.capacity();
  }

  /** Value at a row-major flat index. */
  public float get(int flatIndex) {
    return data.get(flatIndex);
  }

  /**
   * A view of the values (position 0, limit numel); writes go through to the tensor (read-only
   * for a tensor that views a file).
   */
  public FloatBuffer buffer() {
    return data.duplicate();
  }

  /** The values copied into a new array. */
  public float[] toArray() {
    float[] out = new float[numel()];
    data.get(0, out);
    return out;
  }

  @Override
  public String toString() {
    return "FloatTensor" + Arrays.toString(shape);
  }
}
