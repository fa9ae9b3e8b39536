package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files over 2 GiB (sparse, so they cost no disk): mapped in several pieces. */
class LargeFileTest {
  private static final long GIB = 1L << 30;

  @TempDir Path dir;

  @Test
  void mapsA3GibFileInPieces() throws IOException {
    long a = 1536 * (1L << 20); // 1.5 GiB each: both cannot share one 2 GiB mapping
    String header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[" + a + "],\"data_offsets\":[0," + a
        + "]},\"b\":{\"dtype\":\"F32\",\"shape\":[" + (a / 4) + "],\"data_offsets\":[" + a
        + "," + (2 * a) + "]}}";
    Path p = sparse(header, 2 * a, 0x3f800000); // last float of b = 1.0
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      TensorEntry tb = f.get("b");
      assertEquals(a, tb.data().remaining());
      assertEquals(1.0f, tb.data().getFloat((int) a - 4));
      assertEquals(0.0f, tb.data().getFloat(0));
      assertEquals(a, f.get("a").data().remaining());
    }
  }

  @Test
  void rejectsASingleTensorOver2Gib() throws IOException {
    long n = 2 * GIB + 8;
    String header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + n + "],\"data_offsets\":[0," + n
        + "]}}";
    Path p = sparse(header, n, 0);
    CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(p));
    assertTrue(e.getMessage().contains("tensor 'big' is " + n
        + " bytes; tensors over 2 GiB are not supported"), e.getMessage());
  }

  /** A file with this header, {@code dataBytes} of zeros, and {@code lastInt} at the end. */
  private Path sparse(String header, long dataBytes, int lastInt) throws IOException {
    Path p = dir.resolve("large.safetensors");
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
      f.write(len.array());
      f.write(h);
      long end = 8 + h.length + dataBytes;
      f.setLength(end);
      f.seek(end - 4);
      f.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(lastInt).array());
    }
    return p;
  }
}
