package io.cm4j.weights;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Byte-level tensor rearrangements the readers need: strided views made contiguous, 2-D
 * transposes, byte-order swaps and element-type conversions. All work on raw little-endian
 * element bytes, so they move values bit for bit (except the dtype conversions, which round to
 * nearest even as torch does).
 */
public final class TensorOps {
  private TensorOps() {}

  /** Whether row-major data of this shape has these strides (dimensions of size 1 ignored). */
  public static boolean isContiguous(long[] shape, long[] stride) {
    long expected = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      if (shape[i] != 1 && stride[i] != expected) {
        return false;
      }
      expected *= shape[i];
    }
    return true;
  }

  /**
   * The elements of a strided view, row-major and contiguous, in a new direct buffer.
   * {@code src} holds the whole storage; offset and strides count elements, and the caller has
   * checked that every index lies inside the storage.
   */
  public static ByteBuffer gather(ByteBuffer src, int elemSize, long offset, long[] shape,
      long[] stride) {
    long numel = 1;
    for (long d : shape) {
      numel *= d;
    }
    ByteBuffer out = newBuffer(numel * elemSize);
    if (numel == 0) {
      return out;
    }
    int nd = shape.length;
    long[] idx = new long[nd];
    // Innermost run: copied in one piece when its stride is 1.
    long run = nd == 0 ? 1 : shape[nd - 1];
    boolean unit = nd == 0 || stride[nd - 1] == 1;
    ByteBuffer s = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long rows = numel / Math.max(run, 1);
    for (long r = 0; r < rows; r++) {
      long base = offset;
      for (int d = 0; d < nd - 1; d++) {
        base += idx[d] * stride[d];
      }
      if (unit) {
        int from = (int) (base * elemSize);
        out.put(s.duplicate().position(from).limit(from + (int) (run * elemSize)));
      } else {
        long step = stride[nd - 1];
        for (long j = 0; j < run; j++) {
          copyElement(s, (int) ((base + j * step) * elemSize), out, elemSize);
        }
      }
      for (int d = nd - 2; d >= 0; d--) { // odometer over the outer dimensions
        if (++idx[d] < shape[d]) {
          break;
        }
        idx[d] = 0;
      }
    }
    return out.flip();
  }

  private static void copyElement(ByteBuffer s, int from, ByteBuffer out, int elemSize) {
    switch (elemSize) {
      case 4: out.putInt(s.getInt(from)); break;
      case 2: out.putShort(s.getShort(from)); break;
      case 8: out.putLong(s.getLong(from)); break;
      default:
        for (int k = 0; k < elemSize; k++) {
          out.put(s.get(from + k));
        }
    }
  }

  /**
   * The buffer itself when it is direct and its first element is aligned to the element size;
   * otherwise an aligned direct copy (pickled data sits at arbitrary file offsets, and native
   * code may read it as float arrays).
   */
  public static ByteBuffer aligned(ByteBuffer b, int elemSize) {
    if (b.isDirect() && b.alignmentOffset(b.position(), elemSize) == 0) {
      return b;
    }
    ByteBuffer out = newBuffer(b.remaining());
    return out.put(b.duplicate()).flip();
  }

  /** A row-major [rows, cols] matrix transposed to [cols, rows], in a new direct buffer. */
  public static ByteBuffer transpose2d(ByteBuffer src, int elemSize, long rows, long cols) {
    return gather(src, elemSize, 0, new long[] {cols, rows}, new long[] {1, cols});
  }

  /** Big-endian elements turned little-endian, in a new direct buffer. */
  public static ByteBuffer swapBytes(ByteBuffer src, int elemSize) {
    ByteBuffer in = src.duplicate();
    ByteBuffer out = newBuffer(in.remaining());
    int n = in.remaining();
    int start = in.position();
    for (int i = 0; i < n; i += elemSize) {
      for (int k = elemSize - 1; k >= 0; k--) {
        out.put(in.get(start + i + k));
      }
    }
    return out.flip();
  }

  /**
   * Elements of one float type converted to another (F32, F16, BF16), in a new direct buffer;
   * narrowing rounds to nearest even. The same type is returned as it is.
   */
  public static ByteBuffer convert(ByteBuffer src, DType from, DType to) {
    if (from == to) {
      return src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }
    ByteBuffer in = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long n = in.remaining() / from.size();
    ByteBuffer out = newBuffer(n * to.size());
    int base = in.position();
    for (int i = 0; i < n; i++) {
      float v;
      switch (from) {
        case F32: v = in.getFloat(base + 4 * i); break;
        case F16: v = Half.toFloat(in.getShort(base + 2 * i)); break;
        case BF16: v = Half.bf16ToFloat(in.getShort(base + 2 * i)); break;
        default: throw new IllegalArgumentException("not a float type: " + from);
      }
      switch (to) {
        case F32: out.putFloat(v); break;
        case F16: out.putShort(floatToHalf(v)); break;
        case BF16: out.putShort(floatToBf16(v)); break;
        default: throw new IllegalArgumentException("not a float type: " + to);
      }
    }
    return out.flip();
  }

  /** IEEE binary16 bits of a float, rounded to nearest even; overflow gives infinity. */
  public static short floatToHalf(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) { // inf or NaN (NaN keeps a quiet payload bit)
      return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) { // subnormal or zero in half precision
      if (e < -10) {
        return (short) sign;
      }
      int m = mant | 0x800000; // implicit leading 1
      int shift = 14 - e;
      int half = m >>> shift;
      int rest = m & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (rest > halfway || (rest == halfway && (half & 1) != 0)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = (e << 10) | (mant >>> 13);
    int rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) {
      half++; // may carry into the exponent, up to infinity: correct rounding
    }
    return (short) (sign | half);
  }

  /** bfloat16 bits of a float, rounded to nearest even (NaN stays NaN). */
  public static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7fffffff) > 0x7f800000) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
    return (short) (rounded >>> 16);
  }

  private static ByteBuffer newBuffer(long bytes) {
    if (bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor of " + bytes + " bytes exceeds 2 GiB");
    }
    return ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
  }
}
