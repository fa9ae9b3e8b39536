package io.cm4j.weights;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A memory-mapped safetensors file, validated completely when opened.
 *
 * <p>Layout (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
 * UTF-8 JSON, then the data buffer. {@link #open} rejects everything a safe reader must: N over
 * {@value #MAX_HEADER_BYTES} or past the end of the file, invalid UTF-8 or JSON, duplicate keys,
 * unknown dtypes, shapes whose products overflow, byte lengths other than numel &times; dtype
 * size, and offsets that, sorted, do not tile the buffer from 0 to its end with no gap or
 * overlap. So no tensor ever points outside the file.
 *
 * <p>Tensor data is never copied into the heap: {@link #get} hands out read-only little-endian
 * views of the mapping. The data area is mapped in pieces of at most 2 GiB (a single tensor must
 * fit in one piece), so files of any size open on JDK 17. Instances are immutable and safe to
 * share between threads. {@link #close()} drops the mappings; the JDK releases mapped memory when
 * the buffers are garbage-collected, so do not keep views after closing.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** Largest header the reader accepts, as the reference implementation. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final String METADATA_KEY = "__metadata__";
  private static final long MAX_PIECE_BYTES = Integer.MAX_VALUE;

  private final Path path;
  private final Map<String, String> metadata;
  private final SlotTable<Slot> tensors; // in data-offset order

  /** Where one tensor lives: which mapped piece, and its byte range inside it. */
  private record Slot(String name, DType dtype, long[] shape, long begin, long end,
      MappedByteBuffer piece, int offset) {}

  private SafetensorsFile(Path path, Map<String, String> metadata, Map<String, Slot> tensors) {
    this.path = path;
    this.metadata = metadata;
    this.tensors = new SlotTable<>(path, "SafetensorsFile", tensors);
  }

  /** Opens, validates and maps a safetensors file. */
  public static SafetensorsFile open(Path path) throws CheckpointException {
    if (Files.isDirectory(path)) {
      throw new CheckpointException(path, "is a directory, expected a .safetensors file");
    }
    return CheckpointException.reading(path, () -> {
      try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
        return read(path, ch);
      }
    });
  }

  private static SafetensorsFile read(Path path, FileChannel ch) throws IOException {
    long fileSize = ch.size();
    if (fileSize < 8) {
      throw new CheckpointException(path, "truncated: " + fileSize
          + " bytes, shorter than the 8-byte header length");
    }
    ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, lenBuf, 0);
    long headerLen = lenBuf.getLong(0);
    if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
      throw new CheckpointException(path, "header length " + Long.toUnsignedString(headerLen)
          + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes");
    }
    if (headerLen > fileSize - 8) {
      throw new CheckpointException(path, "truncated: header length " + headerLen
          + " exceeds the " + (fileSize - 8) + " bytes after the length field");
    }
    ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLen);
    readFully(ch, headerBytes, 8);
    headerBytes.flip();
    String headerText;
    try {
      CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(headerBytes);
      headerText = chars.toString();
    } catch (CharacterCodingException e) {
      throw new CheckpointException(path, "header is not valid UTF-8");
    }
    Object root;
    try {
      root = Json.parse(headerText, 8);
    } catch (JsonException e) {
      throw new CheckpointException(path, "header is not valid JSON: " + e.getMessage());
    }
    if (!(root instanceof Map)) {
      throw new CheckpointException(path, "header must be a JSON object, found "
          + Json.typeName(root));
    }
    long dataStart = 8 + headerLen;
    long bufferLen = fileSize - dataStart;

    Map<String, String> metadata = Map.of();
    List<Slot> slots = new ArrayList<>();
    for (Map.Entry<?, ?> e : ((Map<?, ?>) root).entrySet()) {
      String name = (String) e.getKey();
      if (name.equals(METADATA_KEY)) {
        metadata = parseMetadata(path, e.getValue());
      } else {
        slots.add(parseEntry(path, name, e.getValue()));
      }
    }
    slots.sort(Comparator.comparingLong(Slot::begin).thenComparingLong(Slot::end));
    long expected = 0;
    Slot previous = null;
    for (Slot s : slots) {
      if (s.begin < expected) {
        throw new CheckpointException(path, "tensor '" + s.name + "' [" + s.begin + ", " + s.end
            + ") overlaps tensor '" + previous.name + "' [" + previous.begin + ", "
            + previous.end + ")");
      }
      if (s.begin > expected) {
        throw new CheckpointException(path, "gap in the data buffer: bytes [" + expected + ", "
            + s.begin + ") belong to no tensor (next is '" + s.name + "')");
      }
      expected = s.end;
      previous = s;
    }
    if (expected > bufferLen) {
      throw new CheckpointException(path, "truncated: tensor '" + previous.name + "' ends at byte "
          + expected + " of the data buffer, but the file holds only " + bufferLen + " data bytes");
    }
    if (expected < bufferLen) {
      throw new CheckpointException(path, (bufferLen - expected)
          + " trailing bytes after the last tensor (tensors end at " + expected
          + ", data buffer is " + bufferLen + " bytes)");
    }
    return new SafetensorsFile(path, metadata, mapPieces(path, ch, dataStart, slots));
  }

  private static Map<String, String> parseMetadata(Path path, Object value)
      throws CheckpointException {
    if (!(value instanceof Map)) {
      throw new CheckpointException(path, METADATA_KEY + " must be an object of strings, found "
          + Json.typeName(value));
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<?, ?> m : ((Map<?, ?>) value).entrySet()) {
      if (!(m.getValue() instanceof String)) {
        throw new CheckpointException(path, METADATA_KEY + " value of '" + m.getKey()
            + "' must be a string, found " + Json.typeName(m.getValue()));
      }
      out.put((String) m.getKey(), (String) m.getValue());
    }
    return Collections.unmodifiableMap(out);
  }

  private static Slot parseEntry(Path path, String name, Object value)
      throws CheckpointException {
    if (!(value instanceof Map)) {
      throw new CheckpointException(path, "tensor '" + name + "': expected an object, found "
          + Json.typeName(value));
    }
    Map<?, ?> info = (Map<?, ?>) value;
    Object dtypeValue = info.get("dtype");
    if (!(dtypeValue instanceof String)) {
      throw new CheckpointException(path, "tensor '" + name + "': missing or non-string dtype");
    }
    DType dtype = DType.fromSafetensorsName((String) dtypeValue);
    if (dtype == null) {
      throw new CheckpointException(path, "tensor '" + name + "': unknown dtype '" + dtypeValue
          + "'");
    }
    long[] shape = longList(path, name, "shape", info.get("shape"), -1);
    long[] offsets = longList(path, name, "data_offsets", info.get("data_offsets"), 2);
    long numel = 1;
    long nbytes;
    try {
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      nbytes = Math.multiplyExact(numel, (long) dtype.size());
    } catch (ArithmeticException e) {
      throw new CheckpointException(path, "tensor '" + name + "': shape "
          + java.util.Arrays.toString(shape) + " overflows 64 bits");
    }
    long begin = offsets[0];
    long end = offsets[1];
    if (end < begin) {
      throw new CheckpointException(path, "tensor '" + name + "': data_offsets end " + end
          + " < begin " + begin);
    }
    if (end - begin != nbytes) {
      throw new CheckpointException(path, "tensor '" + name + "': data_offsets span "
          + (end - begin) + " bytes, expected " + nbytes + " (" + numel + " x " + dtype
          + " of " + dtype.size() + " bytes)");
    }
    return new Slot(name, dtype, shape, begin, end, null, 0);
  }

  private static long[] longList(Path path, String name, String key, Object value, int length)
      throws CheckpointException {
    if (!(value instanceof List)) {
      throw new CheckpointException(path, "tensor '" + name + "': " + key
          + " must be an array of integers, found " + Json.typeName(value));
    }
    List<?> list = (List<?>) value;
    if (length >= 0 && list.size() != length) {
      throw new CheckpointException(path, "tensor '" + name + "': " + key + " must have "
          + length + " entries, found " + list.size());
    }
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      Object v = list.get(i);
      if (!(v instanceof Long) || (Long) v < 0) {
        throw new CheckpointException(path, "tensor '" + name + "': " + key
            + " entries must be non-negative integers, found " + v);
      }
      out[i] = (Long) v;
    }
    return out;
  }

  /** Maps the data buffer in pieces of at most 2 GiB, each holding whole tensors. */
  private static Map<String, Slot> mapPieces(Path path, FileChannel ch, long dataStart,
      List<Slot> sorted) throws IOException {
    Map<String, Slot> out = new LinkedHashMap<>();
    int i = 0;
    while (i < sorted.size()) {
      long pieceBegin = sorted.get(i).begin;
      int j = i;
      while (j < sorted.size() && sorted.get(j).end - pieceBegin <= MAX_PIECE_BYTES) {
        j++;
      }
      if (j == i) {
        Slot s = sorted.get(i);
        throw new CheckpointException(path, "tensor '" + s.name + "' is " + (s.end - s.begin)
            + " bytes; tensors over 2 GiB are not supported");
      }
      long pieceEnd = sorted.get(j - 1).end;
      MappedByteBuffer piece =
          ch.map(FileChannel.MapMode.READ_ONLY, dataStart + pieceBegin, pieceEnd - pieceBegin);
      for (int k = i; k < j; k++) {
        Slot s = sorted.get(k);
        out.put(s.name, new Slot(s.name, s.dtype, s.shape, s.begin, s.end, piece,
            (int) (s.begin - pieceBegin)));
      }
      i = j;
    }
    return Collections.unmodifiableMap(out);
  }

  private static void readFully(FileChannel ch, ByteBuffer dst, long position) throws IOException {
    while (dst.hasRemaining()) {
      int n = ch.read(dst, position);
      if (n < 0) {
        throw new IOException("unexpected end of file");
      }
      position += n;
    }
  }

  /** The file this was opened from. */
  public Path path() {
    return path;
  }

  /** The {@code __metadata__} string map (empty when absent). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Tensor names in file order (by data offset). */
  public List<String> names() {
    return tensors.names();
  }

  /** Whether the file holds a tensor of this name. */
  public boolean contains(String name) {
    return tensors.contains(name);
  }

  /**
   * The named tensor, its data a read-only little-endian view of the mapping (valid while this
   * file is open).
   */
  public TensorEntry get(String name) throws CheckpointException {
    Slot s = tensors.get(name);
    ByteBuffer data = s.piece.duplicate()
        .position(s.offset).limit(s.offset + (int) (s.end - s.begin))
        .slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    return new TensorEntry(s.name, s.dtype, s.shape, data);
  }

  /** The named tensor's values as floats (F32 as stored; F16 and BF16 widened exactly). */
  public float[] floats(String name) throws CheckpointException {
    TensorEntry t = get(name);
    int n = arrayLength(t);
    float[] out = new float[n];
    ByteBuffer b = t.data();
    switch (t.dtype()) {
      case F32:
        b.asFloatBuffer().get(out);
        break;
      case F16:
        for (int i = 0; i < n; i++) {
          out[i] = Half.toFloat(b.getShort(2 * i));
        }
        break;
      case BF16:
        for (int i = 0; i < n; i++) {
          out[i] = Half.bf16ToFloat(b.getShort(2 * i));
        }
        break;
      default:
        throw new CheckpointException(path, "tensor '" + name + "' has dtype " + t.dtype()
            + ", expected F32, F16 or BF16");
    }
    return out;
  }

  /** The named tensor's values as longs (I64 as stored, I32 widened). */
  public long[] longs(String name) throws CheckpointException {
    TensorEntry t = get(name);
    int n = arrayLength(t);
    long[] out = new long[n];
    ByteBuffer b = t.data();
    switch (t.dtype()) {
      case I64:
        b.asLongBuffer().get(out);
        break;
      case I32:
        for (int i = 0; i < n; i++) {
          out[i] = b.getInt(4 * i);
        }
        break;
      default:
        throw new CheckpointException(path, "tensor '" + name + "' has dtype " + t.dtype()
            + ", expected I64 or I32");
    }
    return out;
  }

  private int arrayLength(TensorEntry t) throws CheckpointException {
    long n = t.numel();
    if (n > Integer.MAX_VALUE - 8) {
      throw new CheckpointException(path, "tensor '" + t.name() + "' has " + n
          + " elements, too many for a Java array");
    }
    return (int) n;
  }

  /** Drops the mappings; views handed out before must not be used afterwards. */
  @Override
  public void close() {
    tensors.close();
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path
        + (tensors.isClosed() ? ", closed]" : ", " + tensors.size() + " tensors]");
  }
}
