package io.cm4j.weights.torch;

import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.SlotTable;
import io.cm4j.weights.TensorEntry;
import io.cm4j.weights.TensorInfo;
import io.cm4j.weights.TensorOps;
import io.cm4j.weights.pickle.PickleException;
import io.cm4j.weights.pickle.PickleReader;
import io.cm4j.weights.pickle.PickleSource;
import io.cm4j.weights.pickle.PyDict;
import io.cm4j.weights.pickle.PyGlobal;
import io.cm4j.weights.pickle.PyTuple;
import io.cm4j.weights.pickle.TorchTensorRef;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@code torch.save} zip archive ({@code diffusion_pytorch_model.bin}, {@code *.pt}): the
 * pickled state dict in {@code <prefix>/data.pkl}, read by the restricted unpickler, and one raw
 * little-endian record {@code <prefix>/data/<key>} per storage. The prefix is whatever the
 * archive uses (torch names it after the file).
 *
 * <p>Every tensor is checked when the file is opened: its storage record exists and is long
 * enough for the offset, sizes and strides, it has no more elements than its storage (expanded,
 * stride-0 views would be materialised at any size they declare), and its dtype is float32,
 * float16 or bfloat16. Stored
 * records are memory-mapped, so contiguous tensors are views of the file; strided ones are copied
 * into contiguous buffers by {@link #get}. Each storage record must be exactly as long as the
 * storage its persistent id declares, stored or deflated, so a deflated record cannot make the
 * reader inflate more than the storage; a deflated record is inflated once, on first use, and
 * kept until {@link #close}. Stored records over 2 GiB are refused (a buffer cannot address
 * them).
 */
public final class TorchZipCheckpoint implements Checkpoint {
  /** Element sizes of torch's storage classes, for checking record lengths. */
  private static final Map<String, Integer> STORAGE_BYTES = Map.ofEntries(
      Map.entry("FloatStorage", 4), Map.entry("HalfStorage", 2), Map.entry("BFloat16Storage", 2),
      Map.entry("DoubleStorage", 8), Map.entry("LongStorage", 8), Map.entry("IntStorage", 4),
      Map.entry("ShortStorage", 2), Map.entry("CharStorage", 1), Map.entry("ByteStorage", 1),
      Map.entry("BoolStorage", 1), Map.entry("ComplexFloatStorage", 8),
      Map.entry("ComplexDoubleStorage", 16));
  private static final Map<String, DType> FLOAT_STORAGES = Map.of(
      "FloatStorage", DType.F32, "HalfStorage", DType.F16, "BFloat16Storage", DType.BF16);
  /**
   * A state dict's pickle holds names, shapes and storage ids, not tensor data: about 150 bytes
   * a tensor, so 64 MiB is room for some 400,000 tensors (the unpickler stops at a million
   * opcodes anyway). A larger declared size is refused before anything is inflated.
   */
  private static final long MAX_PICKLE_BYTES = 64L << 20;

  /** A storage as its persistent id names it. */
  private record Storage(String type, String key, long numel) {}

  /** One tensor: a view of a storage record. */
  private record Slot(TensorInfo info, ZipIndex.Entry record, long offset, long[] stride) {}

  private final Path path;
  private final SlotTable<Slot> tensors;
  private final int count; // toString has always reported it, closed or not
  private volatile Map<String, ByteBuffer> mapped; // stored records by name; empty when closed
  private final Map<String, ByteBuffer> inflated = new HashMap<>(); // guarded by itself

  private TorchZipCheckpoint(Path path, Map<String, Slot> tensors,
      Map<String, ByteBuffer> mapped) {
    this.path = path;
    this.tensors = new SlotTable<>(path, "checkpoint", tensors);
    this.count = tensors.size();
    this.mapped = mapped;
  }

  /** Opens and validates a torch zip archive. */
  public static TorchZipCheckpoint open(Path path) throws CheckpointException {
    return CheckpointException.reading(path, () -> {
      try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
        return read(path, ch);
      }
    });
  }

  private static TorchZipCheckpoint read(Path path, FileChannel ch) throws IOException {
    ZipIndex zip = ZipIndex.read(path, ch);
    List<String> pickles = new ArrayList<>();
    for (String name : zip.entries().keySet()) {
      if (name.equals("data.pkl") || name.endsWith("/data.pkl")) {
        pickles.add(name);
      }
    }
    if (pickles.size() != 1) {
      throw new CheckpointException(path, pickles.isEmpty()
          ? "zip archive has no data.pkl: not a torch.save file"
          : "zip archive has several data.pkl files: " + pickles);
    }
    String prefix = pickles.get(0).substring(0, pickles.get(0).length() - "data.pkl".length());
    ZipIndex.Entry byteorder = zip.entries().get(prefix + "byteorder");
    if (byteorder != null) {
      String order = StandardCharsets.US_ASCII.decode(contents(path, ch, byteorder, 16))
          .toString().trim();
      if (!order.equals("little")) {
        throw new CheckpointException(path, "byteorder is '" + order
            + "'; only little-endian torch files are supported");
      }
    }
    ZipIndex.Entry pkl = zip.entries().get(pickles.get(0));
    Object root;
    try {
      root = PickleReader.load(PickleSource.of(contents(path, ch, pkl, MAX_PICKLE_BYTES)),
          TorchZipCheckpoint::storage);
    } catch (PickleException e) {
      throw new CheckpointException(path, pickles.get(0) + ": " + e.getMessage());
    }
    if (!(root instanceof PyDict)) {
      throw new CheckpointException(path, "data.pkl holds " + root
          + ", expected a state dict (a dict of tensors)");
    }
    Map<String, Slot> tensors = new LinkedHashMap<>();
    Map<String, ByteBuffer> mapped = new LinkedHashMap<>();
    for (Map.Entry<Object, Object> e : ((PyDict) root).entries().entrySet()) {
      if (!(e.getKey() instanceof String) || !(e.getValue() instanceof TorchTensorRef)) {
        continue; // not a weight (a step counter, a config value); nothing to load
      }
      String name = (String) e.getKey();
      Slot slot = slot(path, zip, prefix, name, (TorchTensorRef) e.getValue());
      tensors.put(name, slot);
      ZipIndex.Entry rec = slot.record;
      if (rec.stored() && rec.size() > Integer.MAX_VALUE) {
        throw new CheckpointException(path, "storage record '" + rec.name() + "' of tensor '"
            + name + "' is " + rec.size() + " bytes; records over 2 GiB are not supported");
      }
      if (rec.stored() && !mapped.containsKey(rec.name())) {
        mapped.put(rec.name(), ch.map(FileChannel.MapMode.READ_ONLY, rec.dataOffset(),
            rec.size()).order(ByteOrder.LITTLE_ENDIAN));
      }
    }
    if (tensors.isEmpty()) {
      List<String> keys = new ArrayList<>();
      for (Object k : ((PyDict) root).entries().keySet()) {
        keys.add(String.valueOf(k));
        if (keys.size() == 10) {
          break;
        }
      }
      throw new CheckpointException(path, "data.pkl holds no tensors at its top level (keys: "
          + keys + ")");
    }
    return new TorchZipCheckpoint(path, Collections.unmodifiableMap(tensors),
        Collections.unmodifiableMap(mapped));
  }

  /** The persistent-id loader: ("storage", torch.XStorage, key, location, numel). */
  private static Object storage(Object pid) throws PickleException {
    if (!(pid instanceof PyTuple) || ((PyTuple) pid).size() != 5
        || !"storage".equals(((PyTuple) pid).get(0))) {
      throw new PickleException("persistent id " + pid
          + " is not a torch storage (\"storage\", type, key, location, numel)");
    }
    PyTuple t = (PyTuple) pid;
    if (!(t.get(1) instanceof PyGlobal) || !(t.get(2) instanceof String)
        || !(t.get(4) instanceof Long) || (Long) t.get(4) < 0) {
      throw new PickleException("malformed torch storage id (type " + t.get(1) + ")");
    }
    return new Storage(((PyGlobal) t.get(1)).name(), (String) t.get(2), (Long) t.get(4));
  }

  private static Slot slot(Path path, ZipIndex zip, String prefix, String name,
      TorchTensorRef ref) throws CheckpointException {
    if (!(ref.storage() instanceof Storage)) {
      throw new CheckpointException(path, "tensor '" + name + "' has no torch storage");
    }
    Storage s = (Storage) ref.storage();
    DType dtype = FLOAT_STORAGES.get(s.type);
    if (dtype == null) {
      throw new CheckpointException(path, "tensor '" + name + "' is a torch." + s.type
          + "; only float32, float16 and bfloat16 tensors are supported");
    }
    String recordName = prefix + "data/" + s.key;
    ZipIndex.Entry rec = zip.entries().get(recordName);
    if (rec == null) {
      throw new CheckpointException(path, "tensor '" + name + "': storage record '" + recordName
          + "' is missing");
    }
    long[] size = ref.size();
    long[] stride = ref.stride();
    long needElems;
    long numel = 1;
    long storageBytes;
    try {
      long last = ref.offset();
      for (int i = 0; i < size.length; i++) {
        numel = Math.multiplyExact(numel, size[i]);
        if (size[i] > 0) {
          last = Math.addExact(last, Math.multiplyExact(size[i] - 1, stride[i]));
        }
      }
      needElems = numel == 0 ? 0 : Math.addExact(last, 1);
      Math.multiplyExact(Math.max(needElems, s.numel), (long) STORAGE_BYTES.get(s.type));
      storageBytes = s.numel * STORAGE_BYTES.get(s.type);
    } catch (ArithmeticException e) {
      throw new CheckpointException(path, "tensor '" + name + "': size "
          + Arrays.toString(size) + " with stride " + Arrays.toString(stride)
          + " overflows 64 bits");
    }
    long elemSize = dtype.size();
    if (needElems > s.numel || s.numel * elemSize > rec.size()) {
      throw new CheckpointException(path, "tensor '" + name + "' (offset " + ref.offset()
          + ", size " + Arrays.toString(size) + ", stride " + Arrays.toString(stride)
          + ") needs " + Math.max(needElems, s.numel) * elemSize + " bytes of storage record '"
          + recordName + "', which holds " + rec.size());
    }
    if (rec.size() != storageBytes) {
      throw new CheckpointException(path, "storage record '" + recordName + "' of tensor '"
          + name + "' is " + rec.size() + " bytes (" + (rec.stored() ? "stored" : "deflated")
          + "), but its storage of " + s.numel + " torch." + s.type + " elements is "
          + storageBytes + " bytes");
    }
    if (numel > s.numel) { // only views that repeat elements (stride 0) have more
      throw new CheckpointException(path, "tensor '" + name + "' (size " + Arrays.toString(size)
          + ", stride " + Arrays.toString(stride) + ") has " + numel + " elements, more than "
          + "its storage of " + s.numel + ": expanded views are not supported");
    }
    return new Slot(new TensorInfo(name, dtype, size), rec, ref.offset(), stride);
  }

  /** An entry's bytes: a mapping when stored, else inflated (at most {@code limit} bytes). */
  private static ByteBuffer contents(Path path, FileChannel ch, ZipIndex.Entry e, long limit)
      throws IOException {
    if (e.size() > limit) {
      throw new CheckpointException(path, "zip entry '" + e.name() + "' is " + e.size()
          + " bytes, more than the limit of " + limit);
    }
    if (e.compressedSize() > Integer.MAX_VALUE) { // what one mapping can hold
      throw new CheckpointException(path, "zip entry '" + e.name() + "' is "
          + e.compressedSize() + " compressed bytes; entries over 2 GiB are not supported");
    }
    ByteBuffer raw = ch.map(FileChannel.MapMode.READ_ONLY, e.dataOffset(), e.compressedSize());
    return e.stored() ? raw.order(ByteOrder.LITTLE_ENDIAN) : Inflation.inflate(path, e, raw);
  }

  @Override
  public Path path() {
    return path;
  }

  @Override
  public String format() {
    return "torch";
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
    ByteBuffer storage = record(s.record);
    int es = s.info.dtype().size();
    long[] shape = s.info.shape();
    ByteBuffer data;
    if (s.info.nbytes() == 0) { // no elements: the offset need not lie inside the storage
      data = ByteBuffer.allocateDirect(0);
    } else if (TensorOps.isContiguous(shape, s.stride)) {
      int from = (int) (s.offset * es);
      data = TensorOps.aligned(
          storage.duplicate().position(from).limit(from + (int) s.info.nbytes()).slice(), es);
    } else {
      data = TensorOps.gather(storage, es, s.offset, shape, s.stride);
    }
    return new TensorEntry(name, s.info.dtype(), shape,
        data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN));
  }

  private ByteBuffer record(ZipIndex.Entry e) throws CheckpointException {
    ByteBuffer m = mapped.get(e.name());
    tensors.checkOpen();
    if (m != null) {
      return m.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }
    synchronized (inflated) {
      tensors.checkOpen(); // close() may have run since: nothing is cached after it
      ByteBuffer done = inflated.get(e.name());
      if (done == null) {
        done = inflateRecord(e);
        inflated.put(e.name(), done);
      }
      return done.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  private ByteBuffer inflateRecord(ZipIndex.Entry e) throws CheckpointException {
    // Not CheckpointException.reading: a file deleted since open is "cannot read", as before,
    // not "file not found".
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      return contents(path, ch, e, Integer.MAX_VALUE);
    } catch (CheckpointException ex) {
      throw ex;
    } catch (IOException ex) {
      throw new CheckpointException(path, "cannot read: " + CheckpointException.reason(ex), ex);
    }
  }

  @Override
  public void close() {
    tensors.close();
    mapped = Map.of();
    synchronized (inflated) {
      inflated.clear();
    }
  }

  @Override
  public String toString() {
    return "TorchZipCheckpoint[" + path + ", " + count + " tensors]";
  }
}
