package io.cm4j.weights.pickle;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Writes pickle opcodes by hand, for tests: hostile streams, and small state dicts in the shapes
 * torch, numpy and Paddle produce (checked against Python's pickletools while writing them).
 */
public final class PickleBytes {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  /** A stream starting with PROTO n. */
  public static PickleBytes proto(int n) {
    return new PickleBytes().op(0x80).op(n);
  }

  public PickleBytes op(int... opcodes) {
    for (int o : opcodes) {
      out.write(o);
    }
    return this;
  }

  public PickleBytes raw(byte[] b) {
    out.write(b, 0, b.length);
    return this;
  }

  public PickleBytes u32(long v) {
    return raw(le(4).putInt((int) v).array());
  }

  public PickleBytes u64(long v) {
    return raw(le(8).putLong(v).array());
  }

  /** GLOBAL "module\nname\n". */
  public PickleBytes global(String module, String name) {
    op('c');
    return raw((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
  }

  /** Protocol 4's STACK_GLOBAL. */
  public PickleBytes stackGlobal(String module, String name) {
    return str(module).str(name).op(0x93);
  }

  /** BINUNICODE. */
  public PickleBytes str(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    op('X').u32(b.length);
    return raw(b);
  }

  /** BINBYTES (protocol 3+). */
  public PickleBytes bytes(byte[] b) {
    op('B').u32(b.length);
    return raw(b);
  }

  /** BININT1/BININT2/BININT or LONG1, as Python picks. */
  public PickleBytes integer(long v) {
    if (v >= 0 && v < 256) {
      return op('K', (int) v);
    } else if (v >= 0 && v < 65536) {
      return op('M', (int) (v & 0xff), (int) (v >> 8));
    } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
      return op('J').raw(le(4).putInt((int) v).array());
    }
    op(0x8a, 8);
    return raw(le(8).putLong(v).array());
  }

  /** A tuple of integers, as MARK ... TUPLE. */
  public PickleBytes ints(long... values) {
    op('(');
    for (long v : values) {
      integer(v);
    }
    return op('t');
  }

  public PickleBytes mark() {
    return op('(');
  }

  public PickleBytes tuple() {
    return op('t');
  }

  public PickleBytes emptyDict() {
    return op('}');
  }

  public PickleBytes setItems() {
    return op('u');
  }

  public PickleBytes reduce() {
    return op('R');
  }

  public PickleBytes build() {
    return op('b');
  }

  public PickleBytes stop() {
    return op('.');
  }

  /**
   * A numpy array as numpy pickles it: _reconstruct(ndarray, (0,), b'b') then BUILD with
   * (1, shape, dtype(code) BUILD (3, order, ...), is_fortran, raw bytes). With latin1 the raw
   * bytes are protocol 2's {@code _codecs.encode(str, 'latin1')}.
   */
  public PickleBytes ndarray(String code, char order, long[] shape, boolean fortran,
      byte[] data, boolean latin1) {
    global("numpy.core.multiarray", "_reconstruct");
    mark().global("numpy", "ndarray").ints(0).bytes(new byte[] {'b'}).tuple().reduce();
    mark().integer(1).ints(shape);
    global("numpy", "dtype").mark().str(code).op(0x89, 0x88).tuple().reduce();
    mark().integer(3).str(String.valueOf(order)).op('N', 'N', 'N').integer(-1).integer(-1)
        .integer(0).tuple().build();
    op(fortran ? 0x88 : 0x89);
    if (latin1) {
      global("_codecs", "encode").mark()
          .str(new String(data, StandardCharsets.ISO_8859_1)).str("latin1").tuple().reduce();
    } else {
      bytes(data);
    }
    return tuple().build();
  }

  /**
   * torch's _rebuild_tensor_v2(persistent storage id, offset, size, stride, False,
   * OrderedDict()).
   */
  public PickleBytes tensor(String storageType, String key, long numel, long offset,
      long[] size, long[] stride) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark().str("storage").global("torch", storageType).str(key).str("cpu").integer(numel)
        .tuple().op('Q');
    integer(offset).ints(size).ints(stride).op(0x89);
    global("collections", "OrderedDict").op(')').reduce();
    return tuple().reduce();
  }

  public byte[] toBytes() {
    return out.toByteArray();
  }

  private static ByteBuffer le(int n) {
    return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
  }
}
