package io.cm4j.weights.torch;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
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
}
