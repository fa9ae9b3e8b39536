package io.cm4j.weights.torch;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/** Writes small torch.save-style zip archives for tests. */
public final class TorchZips {
  private final String prefix;
  private final Map<String, byte[]> entries = new LinkedHashMap<>();
  private boolean deflate;

  /** An archive whose entries live under {@code prefix/}. */
  public TorchZips(String prefix, byte[] dataPkl) {
    this.prefix = prefix;
    entries.put("data.pkl", dataPkl);
    entries.put("version", "3\n".getBytes());
  }

  /** Adds the storage record {@code data/key}. */
  public TorchZips record(String key, byte[] bytes) {
    entries.put("data/" + key, bytes);
    return this;
  }

  /** Adds any entry under the prefix. */
  public TorchZips entry(String name, byte[] bytes) {
    entries.put(name, bytes);
    return this;
  }

  /** Deflates every entry instead of storing it (torch stores; other zip tools may not). */
  public TorchZips deflated() {
    deflate = true;
    return this;
  }

  public Path write(Path file) throws IOException {
    try (OutputStream os = Files.newOutputStream(file);
        ZipOutputStream zip = new ZipOutputStream(os)) {
      for (Map.Entry<String, byte[]> e : entries.entrySet()) {
        ZipEntry z = new ZipEntry(prefix + "/" + e.getKey());
        if (!deflate) {
          CRC32 crc = new CRC32();
          crc.update(e.getValue());
          z.setMethod(ZipEntry.STORED);
          z.setSize(e.getValue().length);
          z.setCompressedSize(e.getValue().length);
          z.setCrc(crc.getValue());
        }
        zip.putNextEntry(z);
        zip.write(e.getValue());
        zip.closeEntry();
      }
    }
    return file;
  }

  /**
   * Writes the entries stored, by hand, plus the record {@code data/key} of {@code size} zero
   * bytes left as a hole of a sparse file: a record of gigabytes costs no disk and no time.
   * Sizes must stay under 4 GiB (no ZIP64); CRCs are left 0 (the reader does not check them).
   */
  public Path writeWithSparseRecord(Path file, String key, long size) throws IOException {
    return writeWithSparseRecord(file, key, size, size, false);
  }

  /**
   * The same, with the sparse record declared {@code compressedSize} bytes that inflate to
   * {@code size} when {@code deflated} (method 8; the hole is not valid deflate data).
   */
  public Path writeWithSparseRecord(Path file, String key, long compressedSize, long size,
      boolean deflated) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE,
        StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      List<ByteBuffer> central = new ArrayList<>();
      Map<String, byte[]> all = new LinkedHashMap<>(entries);
      all.put("data/" + key, null);
      for (Map.Entry<String, byte[]> e : all.entrySet()) {
        byte[] name = (prefix + "/" + e.getKey()).getBytes(StandardCharsets.UTF_8);
        boolean sparse = e.getValue() == null;
        long n = sparse ? compressedSize : e.getValue().length;
        long inflated = sparse ? size : n;
        short method = (short) (sparse && deflated ? 8 : 0);
        long local = ch.position();
        ch.write(le(30 + name.length).putInt(0x04034b50).putShort((short) 20).putShort((short) 0)
            .putShort(method).putInt(0).putInt(0).putInt((int) n).putInt((int) inflated)
            .putShort((short) name.length).putShort((short) 0).put(name).flip());
        if (e.getValue() == null) {
          ch.position(ch.position() + n);
        } else {
          ch.write(ByteBuffer.wrap(e.getValue()));
        }
        central.add(le(46 + name.length).putInt(0x02014b50).putShort((short) 20)
            .putShort((short) 20).putShort((short) 0).putShort(method).putInt(0).putInt(0)
            .putInt((int) n).putInt((int) inflated)
            .putShort((short) name.length).putLong(0).putInt(0).putInt((int) local).put(name)
            .flip());
      }
      long cdOffset = ch.position();
      for (ByteBuffer c : central) {
        ch.write(c);
      }
      long cdSize = ch.position() - cdOffset;
      ch.write(le(22).putInt(0x06054b50).putInt(0).putShort((short) central.size())
          .putShort((short) central.size()).putInt((int) cdSize).putInt((int) cdOffset)
          .putShort((short) 0).flip());
    }
    return file;
  }

  private static ByteBuffer le(int n) {
    return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
  }
}
