package io.cm4j.weights;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes named tensors and string metadata as a safetensors file, atomically: the bytes go to a
 * temporary file in the target's folder which is renamed over the target only once complete, so
 * a failure never leaves a half-written file behind.
 *
 * <p>Tensors are written in the order they were added; the data passed to {@code add*} is
 * referenced, not copied, until {@link #write}. Not thread-safe.
 */
public final class SafetensorsWriter {
  private static final int CHUNK_ELEMENTS = 1 << 16;

  private final Map<String, String> metadata = new LinkedHashMap<>();
  private final Map<String, Pending> tensors = new LinkedHashMap<>();

  /** A tensor waiting to be written: its header fields and how to emit its bytes. */
  private record Pending(DType dtype, long[] shape, long nbytes, DataSource source) {}

  @FunctionalInterface
  private interface DataSource {
    void writeTo(FileChannel out, ByteBuffer scratch) throws IOException;
  }

  /** Adds a {@code __metadata__} entry. */
  public SafetensorsWriter metadata(String key, String value) {
    metadata.put(key, value);
    return this;
  }

  /** Adds a float32 tensor from an array holding exactly numel(shape) values. */
  public SafetensorsWriter addFloats(String name, long[] shape, float[] values) {
    return addFloats(name, shape, FloatBuffer.wrap(values));
  }

  /** Adds a float32 tensor from the remaining values of a buffer (any byte order). */
  public SafetensorsWriter addFloats(String name, long[] shape, FloatBuffer values) {
    FloatBuffer src = values.duplicate();
    long nbytes = checkedBytes(name, shape, DType.F32, src.remaining() * 4L);
    tensors.put(name, new Pending(DType.F32, shape.clone(), nbytes, (out, scratch) -> {
      FloatBuffer in = src.duplicate();
      while (in.hasRemaining()) {
        scratch.clear();
        int n = Math.min(in.remaining(), CHUNK_ELEMENTS);
        FloatBuffer view = scratch.asFloatBuffer();
        FloatBuffer part = in.slice().limit(n);
        view.put(part);
        in.position(in.position() + n);
        scratch.limit(n * 4);
        writeFully(out, scratch);
      }
    }));
    return this;
  }

  /** Adds an int64 tensor from an array holding exactly numel(shape) values. */
  public SafetensorsWriter addLongs(String name, long[] shape, long[] values) {
    long nbytes = checkedBytes(name, shape, DType.I64, values.length * 8L);
    tensors.put(name, new Pending(DType.I64, shape.clone(), nbytes, (out, scratch) -> {
      for (int i = 0; i < values.length; i += CHUNK_ELEMENTS / 2) {
        int n = Math.min(values.length - i, CHUNK_ELEMENTS / 2);
        scratch.clear();
        scratch.asLongBuffer().put(values, i, n);
        scratch.limit(n * 8);
        writeFully(out, scratch);
      }
    }));
    return this;
  }

  /** Adds a tensor of any dtype from the remaining bytes of a buffer, little-endian already. */
  public SafetensorsWriter add(String name, DType dtype, long[] shape, ByteBuffer littleEndian) {
    ByteBuffer src = littleEndian.duplicate();
    long nbytes = checkedBytes(name, shape, dtype, src.remaining());
    tensors.put(name, new Pending(dtype, shape.clone(), nbytes,
        (out, scratch) -> writeFully(out, src.duplicate())));
    return this;
  }

  /** Produces a tensor's little-endian bytes when the file is written. */
  @FunctionalInterface
  public interface LazyBytes {
    ByteBuffer get() throws IOException;
  }

  /**
   * Adds a tensor whose bytes are produced only while the file is written, one tensor at a
   * time, so a converter never holds a whole model in memory.
   */
  public SafetensorsWriter addLazy(String name, DType dtype, long[] shape, LazyBytes bytes) {
    long numel = 1;
    for (long d : shape) {
      numel = Math.multiplyExact(numel, Math.max(d, 0));
    }
    long nbytes = checkedBytes(name, shape, dtype, numel * dtype.size());
    tensors.put(name, new Pending(dtype, shape.clone(), nbytes, (out, scratch) -> {
      ByteBuffer b = bytes.get().duplicate();
      if (b.remaining() != nbytes) {
        throw new IOException("tensor '" + name + "' produced " + b.remaining()
            + " bytes, expected " + nbytes);
      }
      writeFully(out, b);
    }));
    return this;
  }

  private long checkedBytes(String name, long[] shape, DType dtype, long given) {
    if (name.equals("__metadata__")) {
      throw new IllegalArgumentException("'__metadata__' is reserved, not a tensor name");
    }
    if (tensors.containsKey(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' added twice");
    }
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("tensor '" + name + "': negative dimension " + d);
      }
      numel = Math.multiplyExact(numel, d);
    }
    long nbytes = Math.multiplyExact(numel, (long) dtype.size());
    if (nbytes != given) {
      throw new IllegalArgumentException("tensor '" + name + "': shape needs " + nbytes
          + " bytes of " + dtype + ", found " + given);
    }
    return nbytes;
  }

  /**
   * Writes the file: to a temporary file beside {@code target}, then renamed over it (see
   * {@link AtomicFile}: through a symbolic link; a FIFO, device or folder is refused).
   */
  public void write(Path target) throws IOException {
    Path dest = AtomicFile.destination(target);
    Path tmp = AtomicFile.createTemporary(dest, ".tmp");
    boolean done = false;
    try {
      try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        byte[] header = header();
        ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(0, header.length);
        writeFully(out, prefix);
        writeFully(out, ByteBuffer.wrap(header));
        ByteBuffer scratch =
            ByteBuffer.allocateDirect(CHUNK_ELEMENTS * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (Pending p : tensors.values()) {
          long before = out.position();
          p.source.writeTo(out, scratch);
          if (out.position() - before != p.nbytes) {
            throw new IOException("internal error: wrote " + (out.position() - before)
                + " bytes for a tensor of " + p.nbytes);
          }
        }
        out.force(true);
      }
      AtomicFile.moveIntoPlace(tmp, dest);
      done = true;
    } finally {
      if (!done) {
        Files.deleteIfExists(tmp);
      }
    }
  }

  /** The JSON header, space-padded to a multiple of 8 bytes so the data stays aligned. */
  private byte[] header() {
    Map<String, Object> root = new LinkedHashMap<>();
    if (!metadata.isEmpty()) {
      root.put("__metadata__", metadata);
    }
    long offset = 0;
    for (Map.Entry<String, Pending> e : tensors.entrySet()) {
      Pending p = e.getValue();
      List<Long> shape = new ArrayList<>();
      for (long d : p.shape) {
        shape.add(d);
      }
      Map<String, Object> info = new LinkedHashMap<>();
      info.put("dtype", p.dtype.safetensorsName());
      info.put("shape", shape);
      info.put("data_offsets", List.of(offset, offset + p.nbytes));
      root.put(e.getKey(), info);
      offset += p.nbytes;
    }
    byte[] json = Json.write(root).getBytes(StandardCharsets.UTF_8);
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = new byte[padded];
    System.arraycopy(json, 0, out, 0, json.length);
    java.util.Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  private static void writeFully(FileChannel out, ByteBuffer src) throws IOException {
    while (src.hasRemaining()) {
      out.write(src);
    }
  }
}
