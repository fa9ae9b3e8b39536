package io.cm4j.weights.torch;

import io.cm4j.weights.CheckpointException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The central directory of a zip archive, read directly (PKWARE APPNOTE 4.3), so that stored
 * entries can be memory-mapped where they lie. {@link java.util.zip.ZipFile} does not say where
 * an entry's data starts, and torch.save writes its tensor records uncompressed and 64-byte
 * aligned precisely so that readers can map them.
 *
 * <p>Every offset and size is checked against the file before use: a truncated or corrupt
 * archive is a {@link CheckpointException} saying so. ZIP64 records (archives over 4 GiB) are
 * understood; multi-disk archives and encrypted entries are refused.
 */
final class ZipIndex {
  /** One file of the archive: where its (possibly compressed) bytes lie, and how stored. */
  record Entry(String name, int method, long dataOffset, long compressedSize, long size) {
    boolean stored() {
      return method == 0;
    }
  }

  private static final int EOCD_SIG = 0x06054b50;
  private static final int ZIP64_LOCATOR_SIG = 0x07064b50;
  private static final int ZIP64_EOCD_SIG = 0x06064b50;
  private static final int CENTRAL_SIG = 0x02014b50;
  private static final int LOCAL_SIG = 0x04034b50;
  private static final int EOCD_SIZE = 22;
  private static final int MAX_COMMENT = 0xffff;
  private static final long MAX_CENTRAL_DIRECTORY = 256L << 20;
  private static final int MAX_ENTRIES = 1_000_000;
  /** Deflate makes at most 1032 bytes of each compressed byte (258-byte matches in 2 bits). */
  private static final long MAX_DEFLATE_RATIO = 1032;

  private final Path path;
  private final FileChannel channel;
  private final long fileSize;
  private final Map<String, Entry> entries;

  private ZipIndex(Path path, FileChannel channel) throws IOException {
    this.path = path;
    this.channel = channel;
    this.fileSize = channel.size();
    this.entries = Collections.unmodifiableMap(readCentralDirectory());
  }

  /** Reads the index of an open archive; the channel is used, not closed. */
  static ZipIndex read(Path path, FileChannel channel) throws IOException {
    return new ZipIndex(path, channel);
  }

  /** Entries by name, in central-directory order. */
  Map<String, Entry> entries() {
    return entries;
  }

  private Map<String, Entry> readCentralDirectory() throws IOException {
    long eocd = findEndRecord();
    ByteBuffer end = read(eocd, EOCD_SIZE);
    int disk = end.getShort(4) & 0xffff;
    int cdDisk = end.getShort(6) & 0xffff;
    long count = end.getShort(10) & 0xffff;
    long cdSize = end.getInt(12) & 0xffffffffL;
    long cdOffset = end.getInt(16) & 0xffffffffL;
    if (count == 0xffff || cdSize == 0xffffffffL || cdOffset == 0xffffffffL) {
      long[] z = readZip64End(eocd);
      count = z[0];
      cdSize = z[1];
      cdOffset = z[2];
    } else if (disk != 0 || cdDisk != 0) {
      throw bad("multi-disk zip archives are not supported");
    }
    if (count > MAX_ENTRIES) {
      throw bad("central directory lists " + count + " entries, more than the limit of "
          + MAX_ENTRIES);
    }
    if (cdOffset > fileSize || cdSize > fileSize - cdOffset || cdOffset + cdSize > eocd) {
      throw bad("truncated or corrupt zip: central directory [" + cdOffset + ", "
          + (cdOffset + cdSize) + ") lies outside the " + fileSize + "-byte file");
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY) {
      throw bad("central directory of " + cdSize + " bytes exceeds the limit of "
          + MAX_CENTRAL_DIRECTORY);
    }
    ByteBuffer cd = read(cdOffset, (int) cdSize);
    Map<String, Entry> out = new LinkedHashMap<>();
    int p = 0;
    for (long i = 0; i < count; i++) {
      if (cd.remaining() - p < 46 || cd.getInt(p) != CENTRAL_SIG) {
        throw bad("corrupt zip: central directory entry " + i + " of " + count
            + " is malformed");
      }
      int flags = cd.getShort(p + 8) & 0xffff;
      int method = cd.getShort(p + 10) & 0xffff;
      long csize = cd.getInt(p + 20) & 0xffffffffL;
      long usize = cd.getInt(p + 24) & 0xffffffffL;
      int nameLen = cd.getShort(p + 28) & 0xffff;
      int extraLen = cd.getShort(p + 30) & 0xffff;
      int commentLen = cd.getShort(p + 32) & 0xffff;
      long local = cd.getInt(p + 42) & 0xffffffffL;
      int next = p + 46 + nameLen + extraLen + commentLen;
      if (next > cd.limit()) {
        throw bad("corrupt zip: central directory entry " + i + " runs past its end");
      }
      String name = new String(bytes(cd, p + 46, nameLen), StandardCharsets.UTF_8);
      // ZIP64 extra field: the 64-bit values of exactly the fields saturated above, in order.
      int e = p + 46 + nameLen;
      int eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        int id = cd.getShort(e) & 0xffff;
        int len = cd.getShort(e + 2) & 0xffff;
        int q = e + 4;
        if (q + len > eEnd) {
          throw bad("corrupt zip: extra field of '" + name + "' runs past its end");
        }
        if (id == 0x0001) {
          if (usize == 0xffffffffL && q + 8 <= e + 4 + len) {
            usize = cd.getLong(q);
            q += 8;
          }
          if (csize == 0xffffffffL && q + 8 <= e + 4 + len) {
            csize = cd.getLong(q);
            q += 8;
          }
          if (local == 0xffffffffL && q + 8 <= e + 4 + len) {
            local = cd.getLong(q);
          }
        }
        e += 4 + len;
      }
      if ((flags & 1) != 0) {
        throw bad("zip entry '" + name + "' is encrypted");
      }
      if (csize < 0 || usize < 0 || local < 0) {
        throw bad("corrupt zip: entry '" + name + "' has a size or offset over 2^63");
      }
      long dataOffset = localDataOffset(name, local);
      if (dataOffset > fileSize || csize > fileSize - dataOffset) {
        throw bad("truncated zip: entry '" + name + "' needs bytes [" + dataOffset + ", "
            + (dataOffset + csize) + "), the file has " + fileSize);
      }
      if (method == 8 && usize / MAX_DEFLATE_RATIO > csize) {
        throw bad("corrupt zip: deflated entry '" + name + "' declares " + usize
            + " bytes, more than deflate can make of its " + csize + " compressed bytes");
      }
      if (method == 0 && csize != usize) {
        throw bad("corrupt zip: stored entry '" + name + "' has compressed size " + csize
            + " but size " + usize);
      }
      if (out.put(name, new Entry(name, method, dataOffset, csize, usize)) != null) {
        throw bad("zip archive lists '" + name + "' twice");
      }
      p = next;
    }
    return out;
  }

  /** Finds the end-of-central-directory record: the last signature that fits the tail. */
  private long findEndRecord() throws IOException {
    if (fileSize < EOCD_SIZE) {
      throw bad("truncated zip: " + fileSize + " bytes, too short for an archive");
    }
    int tail = (int) Math.min(fileSize, EOCD_SIZE + MAX_COMMENT);
    ByteBuffer b = read(fileSize - tail, tail);
    for (int i = tail - EOCD_SIZE; i >= 0; i--) {
      if (b.getInt(i) == EOCD_SIG) {
        int commentLen = b.getShort(i + 20) & 0xffff;
        if (i + EOCD_SIZE + commentLen == tail) {
          return fileSize - tail + i;
        }
      }
    }
    throw bad("truncated or not a zip archive: no end-of-central-directory record in the last "
        + tail + " bytes");
  }

  private long[] readZip64End(long eocd) throws IOException {
    if (eocd < 20) {
      throw bad("corrupt zip: ZIP64 values without a ZIP64 locator");
    }
    ByteBuffer loc = read(eocd - 20, 20);
    if (loc.getInt(0) != ZIP64_LOCATOR_SIG) {
      throw bad("corrupt zip: ZIP64 values without a ZIP64 locator");
    }
    long z = loc.getLong(8);
    if (loc.getInt(16) > 1) {
      throw bad("multi-disk zip archives are not supported");
    }
    if (z < 0 || z > eocd - 56) {
      throw bad("truncated or corrupt zip: ZIP64 end record offset " + z + " out of range");
    }
    ByteBuffer r = read(z, 56);
    if (r.getInt(0) != ZIP64_EOCD_SIG) {
      throw bad("corrupt zip: no ZIP64 end record at offset " + z);
    }
    if (r.getInt(16) != 0 || r.getInt(20) != 0) {
      throw bad("multi-disk zip archives are not supported");
    }
    long[] values = {r.getLong(32), r.getLong(40), r.getLong(48)};
    if (values[0] < 0 || values[1] < 0 || values[2] < 0) {
      throw bad("corrupt zip: the ZIP64 end record gives an entry count, central directory "
          + "size or offset over 2^63");
    }
    return values;
  }

  /** Where an entry's data begins: after its local header, whose name and extra may differ. */
  private long localDataOffset(String name, long local) throws IOException {
    if (local > fileSize - 30) {
      throw bad("truncated zip: local header of '" + name + "' at " + local
          + " lies past the end of the " + fileSize + "-byte file");
    }
    ByteBuffer h = read(local, 30);
    if (h.getInt(0) != LOCAL_SIG) {
      throw bad("corrupt zip: no local header for '" + name + "' at offset " + local);
    }
    return local + 30 + (h.getShort(26) & 0xffff) + (h.getShort(28) & 0xffff);
  }

  private ByteBuffer read(long position, int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    long p = position;
    while (b.hasRemaining()) {
      int r = channel.read(b, p);
      if (r < 0) {
        throw bad("truncated zip: unexpected end of file at byte " + p);
      }
      p += r;
    }
    return b.flip();
  }

  private static byte[] bytes(ByteBuffer b, int at, int n) {
    byte[] out = new byte[n];
    b.duplicate().position(at).get(out);
    return out;
  }

  private CheckpointException bad(String problem) {
    return new CheckpointException(path, problem);
  }
}
