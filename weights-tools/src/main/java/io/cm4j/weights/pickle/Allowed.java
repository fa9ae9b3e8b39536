package io.cm4j.weights.pickle;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.TreeSet;

/**
 * The allow-list: the only globals a weight file may name, and what REDUCE, NEWOBJ and BUILD do
 * with them. Each "call" builds a plain Java value from already-parsed arguments; no name ever
 * reaches reflection or anything that executes. Modelled on PyTorch's {@code weights_only}
 * unpickler, narrowed to what torch, numpy and Paddle write for state dicts.
 */
final class Allowed {
  static final String ORDERED_DICT = "collections.OrderedDict";
  static final String REBUILD_TENSOR_V2 = "torch._utils._rebuild_tensor_v2";
  static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
  static final String NDARRAY = "numpy.ndarray";
  static final String DTYPE = "numpy.dtype";
  static final String CODECS_ENCODE = "_codecs.encode";
  // Protocol 2 writes an empty bytes object as bytes(); Python 2 names the module __builtin__.
  static final Set<String> BYTES = Set.of("builtins.bytes", "__builtin__.bytes");
  // numpy 1 and numpy 2 spell the array helpers' module differently; both are the same function.
  static final Set<String> RECONSTRUCT =
      Set.of("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct");
  static final Set<String> FROMBUFFER =
      Set.of("numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer");

  /** torch storage classes: names inside persistent ids, never called. */
  static final Set<String> TORCH_STORAGES = Set.of("FloatStorage", "HalfStorage",
      "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage", "ShortStorage",
      "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage");

  static final Set<String> ALL;

  static {
    Set<String> all = new TreeSet<>(Arrays.asList(ORDERED_DICT, REBUILD_TENSOR_V2,
        REBUILD_PARAMETER, NDARRAY, DTYPE, CODECS_ENCODE));
    all.addAll(BYTES);
    all.addAll(RECONSTRUCT);
    all.addAll(FROMBUFFER);
    for (String s : TORCH_STORAGES) {
      all.add("torch." + s);
    }
    ALL = java.util.Collections.unmodifiableSet(all);
  }

  private Allowed() {}

  /** The global, if allowed; otherwise the refusal naming it. */
  static PyGlobal resolve(String module, String name) throws PickleException {
    String q = module + "." + name;
    if (!ALL.contains(q)) {
      throw new PickleException("global '" + q + "' is not allowed: a weight file names only "
          + "tensor, array and container types (nothing was executed)");
    }
    return new PyGlobal(module, name);
  }

  /** REDUCE: {@code fn(*args)} for the callables on the list. */
  static Object call(PyGlobal fn, PyTuple args) throws PickleException {
    String q = fn.qualifiedName();
    if (q.equals(ORDERED_DICT)) {
      return orderedDict(args);
    } else if (q.equals(REBUILD_TENSOR_V2)) {
      return rebuildTensor(args);
    } else if (q.equals(REBUILD_PARAMETER)) {
      // (data, requires_grad, backward_hooks): a Parameter is its tensor here.
      arity(q, args, 3, 3);
      if (!(args.get(0) instanceof TorchTensorRef)) {
        throw new PickleException(q + ": expected a tensor, found " + describe(args.get(0)));
      }
      return args.get(0);
    } else if (RECONSTRUCT.contains(q)) {
      // (ndarray, (0,), b'b'): an empty array that BUILD fills in.
      arity(q, args, 3, 3);
      if (!(args.get(0) instanceof PyGlobal) || !args.get(0).toString().equals(NDARRAY)) {
        throw new PickleException(q + ": only numpy.ndarray can be reconstructed, found "
            + describe(args.get(0)));
      }
      return new NumpyArray();
    } else if (FROMBUFFER.contains(q)) {
      return fromBuffer(q, args);
    } else if (q.equals(DTYPE)) {
      arity(q, args, 1, 3);
      if (!(args.get(0) instanceof String)) {
        throw new PickleException(q + ": expected a type code string, found "
            + describe(args.get(0)));
      }
      return new NumpyDType((String) args.get(0));
    } else if (q.equals(CODECS_ENCODE)) {
      return latin1(args);
    } else if (BYTES.contains(q)) {
      arity(q, args, 0, 0); // bytes(n) would allocate n bytes: only the empty call
      return new PyBytes(ByteBuffer.allocate(0));
    }
    throw new PickleException("'" + q + "' is a type name, it cannot be called");
  }

  /** NEWOBJ: {@code cls.__new__(cls, *args)}; only an empty OrderedDict qualifies. */
  static Object newObject(PyGlobal cls, PyTuple args) throws PickleException {
    if (cls.qualifiedName().equals(ORDERED_DICT) && args.size() == 0) {
      return new PyDict();
    }
    throw new PickleException("NEWOBJ of '" + cls + "' with " + args.size()
        + " arguments is not allowed");
  }

  /** BUILD: sets an object's state; only arrays, dtypes, dicts and tensors accept one. */
  static void build(Object target, Object state) throws PickleException {
    if (target instanceof NumpyArray) {
      buildArray((NumpyArray) target, state);
    } else if (target instanceof NumpyDType) {
      buildDType((NumpyDType) target, state);
    } else if (target instanceof PyDict || target instanceof TorchTensorRef) {
      // An OrderedDict's state is its attributes (a state dict's _metadata: per-module
      // versions); a plain tensor has none worth keeping. Neither changes any weight.
    } else {
      throw new PickleException("BUILD on " + describe(target) + " is not allowed");
    }
  }

  private static PyDict orderedDict(PyTuple args) throws PickleException {
    arity(ORDERED_DICT, args, 0, 1);
    PyDict d = new PyDict();
    if (args.size() == 1) {
      if (!(args.get(0) instanceof PyList)) {
        throw new PickleException(ORDERED_DICT + ": expected a list of pairs, found "
            + describe(args.get(0)));
      }
      for (Object item : ((PyList) args.get(0)).items) {
        if (!(item instanceof PyTuple) || ((PyTuple) item).size() != 2) {
          throw new PickleException(ORDERED_DICT + ": expected (key, value) pairs, found "
              + describe(item));
        }
        PyTuple pair = (PyTuple) item;
        d.map.put(checkKey(pair.get(0)), pair.get(1));
      }
    }
    return d;
  }

  private static TorchTensorRef rebuildTensor(PyTuple args) throws PickleException {
    String q = REBUILD_TENSOR_V2;
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    arity(q, args, 6, 7);
    long offset = nonNegative(q + " storage offset", args.get(1));
    long[] size = longs(q + " size", args.get(2));
    long[] stride = longs(q + " stride", args.get(3));
    if (size.length != stride.length) {
      throw new PickleException(q + ": size " + Arrays.toString(size) + " and stride "
          + Arrays.toString(stride) + " differ in length");
    }
    return new TorchTensorRef(args.get(0), offset, size, stride);
  }

  private static NumpyArray fromBuffer(String q, PyTuple args) throws PickleException {
    // (buffer, dtype, shape, order)
    arity(q, args, 4, 4);
    NumpyDType dtype = dtypeArg(q, args.get(1));
    long[] shape = longs(q + " shape", args.get(2));
    Object order = args.get(3);
    if (!"C".equals(order) && !"F".equals(order)) {
      throw new PickleException(q + ": order must be 'C' or 'F', found " + describe(order));
    }
    return filled(q, shape, dtype, "F".equals(order), args.get(0));
  }

  private static void buildArray(NumpyArray a, Object state) throws PickleException {
    String q = "numpy.ndarray state";
    if (a.isFilled()) {
      throw new PickleException(q + ": array is already filled");
    }
    if (!(state instanceof PyTuple)) {
      throw new PickleException(q + ": expected a tuple, found " + describe(state));
    }
    PyTuple s = (PyTuple) state;
    // (version, shape, dtype, is_fortran, rawdata); version 0 streams leave the version out.
    int base = s.size() == 5 ? 1 : 0;
    if (s.size() != 4 && s.size() != 5) {
      throw new PickleException(q + ": expected 4 or 5 fields, found " + s.size());
    }
    long[] shape = longs(q + " shape", s.get(base));
    NumpyDType dtype = dtypeArg(q, s.get(base + 1));
    Object fortran = s.get(base + 2);
    if (!(fortran instanceof Boolean) && !(fortran instanceof Long)) {
      throw new PickleException(q + ": is_fortran must be a bool, found " + describe(fortran));
    }
    boolean isFortran = fortran instanceof Boolean ? (Boolean) fortran : (Long) fortran != 0;
    NumpyArray filled = filled(q, shape, dtype, isFortran, s.get(base + 3));
    a.fill(filled.shape(), dtype, isFortran, filled.data());
  }

  private static NumpyArray filled(String q, long[] shape, NumpyDType dtype, boolean fortran,
      Object raw) throws PickleException {
    ByteBuffer data;
    if (raw instanceof PyBytes) {
      data = ((PyBytes) raw).data();
    } else if (raw instanceof String) { // a Python 2 str written by an old numpy
      data = ByteBuffer.wrap(latin1Bytes(q, (String) raw));
    } else {
      throw new PickleException(q + ": expected raw bytes, found " + describe(raw)
          + " (object arrays are not supported)");
    }
    int itemSize = itemSize(dtype.code());
    long numel = 1;
    try {
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      numel = Math.multiplyExact(numel, (long) itemSize);
    } catch (ArithmeticException e) {
      throw new PickleException(q + ": shape " + Arrays.toString(shape) + " overflows");
    }
    if (numel != data.remaining()) {
      throw new PickleException(q + ": shape " + Arrays.toString(shape) + " of " + dtype.code()
          + " needs " + numel + " bytes, the data holds " + data.remaining());
    }
    return new NumpyArray(shape, dtype, fortran, data.order(ByteOrder.LITTLE_ENDIAN));
  }

  private static void buildDType(NumpyDType t, Object state) throws PickleException {
    String q = "numpy.dtype state";
    // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
    if (!(state instanceof PyTuple) || ((PyTuple) state).size() < 5) {
      throw new PickleException(q + ": expected a tuple of at least 5 fields, found "
          + describe(state));
    }
    PyTuple s = (PyTuple) state;
    Object order = s.get(1);
    if (!(order instanceof String) || ((String) order).length() != 1
        || "<>|=".indexOf(((String) order).charAt(0)) < 0) {
      throw new PickleException(q + ": byte order must be one of < > | =, found "
          + describe(order));
    }
    if (s.get(2) != null || s.get(3) != null || s.get(4) != null) {
      throw new PickleException(q + ": structured and sub-array dtypes are not supported");
    }
    t.setByteOrder(((String) order).charAt(0));
  }

  private static PyBytes latin1(PyTuple args) throws PickleException {
    // Protocol 2 writes Python 3 bytes as _codecs.encode(str(b, 'latin1'), 'latin1').
    arity(CODECS_ENCODE, args, 2, 2);
    Object text = args.get(0);
    Object encoding = args.get(1);
    if (!(text instanceof String) || !("latin1".equals(encoding)
        || "latin-1".equals(encoding))) {
      throw new PickleException(CODECS_ENCODE + ": only (str, 'latin1') is allowed, found ("
          + describe(text) + ", " + describe(encoding) + ")");
    }
    return new PyBytes(ByteBuffer.wrap(latin1Bytes(CODECS_ENCODE, (String) text)));
  }

  private static byte[] latin1Bytes(String q, String s) throws PickleException {
    byte[] out = new byte[s.length()];
    for (int i = 0; i < out.length; i++) {
      char c = s.charAt(i);
      if (c > 0xff) {
        throw new PickleException(q + ": character U+" + Integer.toHexString(c)
            + " is not latin-1");
      }
      out[i] = (byte) c;
    }
    return out;
  }

  private static NumpyDType dtypeArg(String q, Object o) throws PickleException {
    if (!(o instanceof NumpyDType)) {
      throw new PickleException(q + ": expected a numpy.dtype, found " + describe(o));
    }
    return (NumpyDType) o;
  }

  /** Bytes per item of a numpy type code ("f4" -> 4); the code must end in digits. */
  static int itemSize(String code) throws PickleException {
    int i = code.length();
    while (i > 0 && Character.isDigit(code.charAt(i - 1))) {
      i--;
    }
    if (i == code.length() || code.length() - i > 3) {
      throw new PickleException("numpy dtype '" + code + "' has no item size");
    }
    return Integer.parseInt(code.substring(i));
  }

  static Object checkKey(Object key) throws PickleException {
    if (key == null || key instanceof String || key instanceof Long || key instanceof Boolean
        || key instanceof BigInteger || key instanceof Double) {
      return key;
    }
    throw new PickleException("dict key of type " + describe(key) + " is not supported");
  }

  private static void arity(String q, PyTuple args, int min, int max) throws PickleException {
    if (args.size() < min || args.size() > max) {
      throw new PickleException(q + ": expected " + (min == max ? "" + min : min + " to " + max)
          + " arguments, found " + args.size());
    }
  }

  private static long nonNegative(String what, Object o) throws PickleException {
    if (!(o instanceof Long) || (Long) o < 0) {
      throw new PickleException(what + " must be a non-negative integer, found " + describe(o));
    }
    return (Long) o;
  }

  private static long[] longs(String what, Object o) throws PickleException {
    if (!(o instanceof PyTuple)) {
      throw new PickleException(what + " must be a tuple of integers, found " + describe(o));
    }
    PyTuple t = (PyTuple) o;
    long[] out = new long[t.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = nonNegative(what + " entries", t.get(i));
    }
    return out;
  }

  /** A short description of a value for messages; never walks into containers. */
  static String describe(Object o) {
    if (o == null) {
      return "None";
    } else if (o instanceof String) {
      String s = (String) o;
      return "'" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "'";
    } else if (o instanceof Long || o instanceof BigInteger) {
      return "int " + o;
    } else if (o instanceof Double) {
      return "float " + o;
    } else if (o instanceof Boolean) {
      return (Boolean) o ? "True" : "False";
    }
    return o.toString(); // every other value type has a shallow toString
  }

  /** The allowed globals, sorted, for documentation and messages. */
  static Set<String> names() {
    return new LinkedHashSet<>(ALL);
  }
}
