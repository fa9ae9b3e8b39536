package io.cm4j.weights.paddle;

import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.SlotTable;
import io.cm4j.weights.TensorEntry;
import io.cm4j.weights.TensorInfo;
import io.cm4j.weights.TensorOps;
import io.cm4j.weights.pickle.NumpyArray;
import io.cm4j.weights.pickle.PickleException;
import io.cm4j.weights.pickle.PickleReader;
import io.cm4j.weights.pickle.PickleSource;
import io.cm4j.weights.pickle.PyDict;
import io.cm4j.weights.pickle.PyList;
import io.cm4j.weights.pickle.PyTuple;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Paddle state dict ({@code paddle.save}, ppdiffusers' {@code unet/model_state.pdparams}): a
 * pickled dict of parameter name to numpy array, read by the restricted unpickler with the file
 * memory-mapped, so array data stays a view of the file where it can.
 *
 * <p>Undone on the way out, so tensors match the torch layout bit for bit:
 * <ul>
 *   <li>ppdiffusers stores the 2-D weight of every {@code nn.Linear} transposed ([in, out]); the
 *       file cannot say which 2-D weights are Linear, so the UNet's list is fixed here
 *       ({@link #isLinearWeight}) and exactly those are transposed back;
 *   <li>protocol 2/3 files split arrays over 2^30 bytes into {@code key@@.N} slices described by
 *       {@code UnpackBigParamInfor@@}; the slices are joined and reshaped;
 *   <li>Fortran-ordered and big-endian arrays are made row-major little-endian.
 * </ul>
 * Paddle saves bfloat16 as numpy uint16, so "u2" arrays are read as BF16.
 */
public final class PaddleCheckpoint implements Checkpoint {
  static final String SPLIT_INFO = "UnpackBigParamInfor@@";

  /** How one tensor is stored: its parts (several when split), their layout, what to undo. */
  private record Slot(TensorInfo info, List<ByteBuffer> parts, long[] storedShape,
      boolean fortran, boolean bigEndian, boolean transpose) {}

  private final Path path;
  private final SlotTable<Slot> tensors; // dropped on close: the mappings can go

  private PaddleCheckpoint(Path path, Map<String, Slot> tensors) {
    this.path = path;
    this.tensors = new SlotTable<>(path, "checkpoint", tensors);
  }

  /**
   * Whether ppdiffusers stores this UNet parameter transposed: the 2-D weight of an
   * {@code nn.Linear} (time embedding MLP, resnet time projections, attention projections).
   */
  public static boolean isLinearWeight(String name) {
    return name.equals("time_embedding.linear_1.weight")
        || name.equals("time_embedding.linear_2.weight")
        || name.endsWith(".time_emb_proj.weight")
        || name.endsWith(".to_q.weight") || name.endsWith(".to_k.weight")
        || name.endsWith(".to_v.weight") || name.endsWith(".to_out.0.weight");
  }

  /** Opens and validates a {@code .pdparams} file. */
  public static PaddleCheckpoint open(Path path) throws CheckpointException {
    Object root = CheckpointException.reading(path, () -> {
      try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
        return PickleReader.load(PickleSource.of(ch, 0, ch.size()),
            PickleReader.NO_PERSISTENT_IDS);
      } catch (PickleException e) {
        throw new CheckpointException(path, e.getMessage());
      }
    });
    if (!(root instanceof PyDict)) {
      throw new CheckpointException(path, "the pickle holds " + root
          + ", expected a state dict (a dict of numpy arrays)");
    }
    PyDict dict = (PyDict) root;
    Map<String, NumpyArray> arrays = new LinkedHashMap<>();
    for (Map.Entry<Object, Object> e : dict.entries().entrySet()) {
      // Other values (StructuredToParameterName@@: a name table) hold no weights.
      if (e.getKey() instanceof String && e.getValue() instanceof NumpyArray) {
        NumpyArray a = (NumpyArray) e.getValue();
        if (!a.isFilled()) {
          throw new CheckpointException(path, "array '" + e.getKey() + "' has no data");
        }
        arrays.put((String) e.getKey(), a);
      }
    }
    Map<String, List<String>> joins = splitInfo(path, dict.get(SPLIT_INFO), arrays);
    Set<String> slices = new HashSet<>();
    joins.values().forEach(slices::addAll);
    Map<String, Slot> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, NumpyArray> e : arrays.entrySet()) {
      String name = e.getKey();
      if (!slices.contains(name)) {
        tensors.put(name, slot(path, name, List.of(e.getValue()), e.getValue().shape()));
      } else if (joins.get(owner(name)).get(0).equals(name)) { // a split array, at its first part
        String whole = owner(name);
        List<NumpyArray> parts = new ArrayList<>();
        for (String part : joins.get(whole)) {
          parts.add(arrays.get(part));
        }
        tensors.put(whole, slot(path, whole, parts, originShape(dict, whole)));
      }
    }
    if (tensors.isEmpty()) {
      throw new CheckpointException(path, "the state dict holds no numpy arrays");
    }
    return new PaddleCheckpoint(path, Collections.unmodifiableMap(tensors));
  }

  private static String owner(String slice) {
    return slice.substring(0, slice.lastIndexOf("@@."));
  }

  /** UnpackBigParamInfor@@: key -> {"OriginShape": shape, "slices": [key@@.0, ...]}. */
  private static Map<String, List<String>> splitInfo(Path path, Object info,
      Map<String, NumpyArray> arrays) throws CheckpointException {
    Map<String, List<String>> out = new LinkedHashMap<>();
    if (info == null) {
      return out;
    }
    if (!(info instanceof PyDict)) {
      throw new CheckpointException(path, SPLIT_INFO + " is " + info + ", expected a dict");
    }
    for (Map.Entry<Object, Object> e : ((PyDict) info).entries().entrySet()) {
      if (!(e.getKey() instanceof String)) {
        throw new CheckpointException(path, SPLIT_INFO + " key " + e.getKey()
            + " is not a string");
      }
      String key = (String) e.getKey();
      Object slices = e.getValue() instanceof PyDict ? ((PyDict) e.getValue()).get("slices")
          : null;
      if (!(slices instanceof PyList) || ((PyList) slices).size() == 0) {
        throw new CheckpointException(path, SPLIT_INFO + " entry '" + key
            + "' has no list of slices");
      }
      List<String> names = new ArrayList<>();
      for (Object s : ((PyList) slices).items()) {
        if (!(s instanceof String) || !((String) s).startsWith(key + "@@.")
            || !arrays.containsKey(s)) {
          throw new CheckpointException(path, SPLIT_INFO + " entry '" + key + "' names slice '"
              + s + "', which is not an array of the file");
        }
        if (!owner((String) s).equals(key)) {
          throw new CheckpointException(path, SPLIT_INFO + " entry '" + key + "' names slice '"
              + s + "', which is a slice of '" + owner((String) s) + "'");
        }
        names.add((String) s);
      }
      out.put(key, names);
    }
    return out;
  }

  private static long[] originShape(PyDict dict, String key) throws CheckpointException {
    Object shape = ((PyDict) ((PyDict) dict.get(SPLIT_INFO)).get(key)).get("OriginShape");
    List<Object> dims = new ArrayList<>();
    if (shape instanceof PyTuple) {
      for (int i = 0; i < ((PyTuple) shape).size(); i++) {
        dims.add(((PyTuple) shape).get(i));
      }
    } else if (shape instanceof PyList) {
      dims.addAll(((PyList) shape).items());
    } else {
      return null;
    }
    long[] out = new long[dims.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(dims.get(i) instanceof Long) || (Long) dims.get(i) < 0) {
        return null;
      }
      out[i] = (Long) dims.get(i);
    }
    return out;
  }

  private static Slot slot(Path path, String name, List<NumpyArray> parts, long[] shape)
      throws CheckpointException {
    if (shape == null) {
      throw new CheckpointException(path, SPLIT_INFO + " entry '" + name
          + "' has no valid OriginShape");
    }
    NumpyArray first = parts.get(0);
    String code = first.dtype().code();
    DType dtype;
    switch (code) {
      case "f4": dtype = DType.F32; break;
      case "f2": dtype = DType.F16; break;
      case "u2": dtype = DType.BF16; break; // paddle's bfloat16
      default:
        throw new CheckpointException(path, "array '" + name + "' has numpy dtype '" + code
            + "'; only float32, float16 and bfloat16 (uint16 in Paddle files) are supported");
    }
    long total = 0;
    List<ByteBuffer> data = new ArrayList<>();
    for (NumpyArray p : parts) {
      if (!p.dtype().code().equals(code) || p.dtype().byteOrder() != first.dtype().byteOrder()
          || (parts.size() > 1 && p.shape().length != 1)) {
        throw new CheckpointException(path, "slices of '" + name
            + "' differ in dtype or are not 1-D");
      }
      data.add(p.data());
      total += p.data().remaining();
    }
    long numel = 1;
    try {
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      Math.multiplyExact(numel, (long) dtype.size());
    } catch (ArithmeticException e) {
      throw new CheckpointException(path, "array '" + name + "': shape "
          + Arrays.toString(shape) + " overflows 64 bits");
    }
    if (numel * dtype.size() != total) {
      throw new CheckpointException(path, "array '" + name + "' of shape "
          + Arrays.toString(shape) + " needs " + numel * dtype.size() + " bytes, its slices hold "
          + total);
    }
    boolean transpose = isLinearWeight(name) && shape.length == 2;
    long[] torchShape = transpose ? new long[] {shape[1], shape[0]} : shape;
    return new Slot(new TensorInfo(name, dtype, torchShape), data, shape,
        parts.size() == 1 && first.fortranOrder(), first.dtype().byteOrder() == '>', transpose);
  }

  @Override
  public Path path() {
    return path;
  }

  @Override
  public String format() {
    return "paddle";
  }

  @Override
  public List<String> names() {
    return tensors.names();
  }

  @Override
  public boolean contains(String name) {
    return tensors.contains(name);
  }

  @Override
  public TensorInfo info(String name) throws CheckpointException {
    return tensors.get(name).info;
  }

  @Override
  public TensorEntry get(String name) throws CheckpointException {
    Slot s = tensors.get(name);
    int es = s.info.dtype().size();
    ByteBuffer data;
    if (s.parts.size() == 1) {
      data = s.parts.get(0).duplicate();
    } else {
      data = ByteBuffer.allocateDirect((int) s.info.nbytes());
      for (ByteBuffer p : s.parts) {
        data.put(p.duplicate());
      }
      data.flip();
    }
    if (s.bigEndian) {
      data = TensorOps.swapBytes(data, es);
    }
    long[] shape = s.storedShape;
    if (s.fortran) { // column-major: the first index varies fastest
      long[] stride = new long[shape.length];
      long step = 1;
      for (int i = 0; i < shape.length; i++) {
        stride[i] = step;
        step *= shape[i];
      }
      data = TensorOps.gather(data, es, 0, shape, stride);
    }
    if (s.transpose) { // [in, out] as stored -> torch's [out, in]
      data = TensorOps.transpose2d(data, es, shape[0], shape[1]);
    }
    return new TensorEntry(name, s.info.dtype(), s.info.shape(),
        TensorOps.aligned(data, es).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN));
  }

  @Override
  public void close() {
    tensors.close();
  }

  @Override
  public String toString() {
    return "PaddleCheckpoint[" + path + ", " + tensors.size() + " tensors]";
  }
}
