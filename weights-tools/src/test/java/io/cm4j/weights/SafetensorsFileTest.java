package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
  @TempDir Path dir;

  /** A valid file: a F32 [2] at [0, 8) and an I64 [1] at [8, 16). */
  private static final String GOOD_HEADER = "{\"__metadata__\":{\"format\":\"pt\"},"
      + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      + "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}}";

  @Test
  void readsAValidFile() throws IOException {
    ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    data.putFloat(1.5f).putFloat(-2f).putLong(42);
    Path p = file(GOOD_HEADER, data.array());
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertEquals(List.of("a", "b"), f.names());
      assertEquals("pt", f.metadata().get("format"));
      assertArrayEquals(new float[] {1.5f, -2f}, f.floats("a"));
      assertArrayEquals(new long[] {42}, f.longs("b"));
      TensorEntry a = f.get("a");
      assertEquals(DType.F32, a.dtype());
      assertArrayEquals(new long[] {2}, a.shape());
      assertTrue(a.data().isReadOnly() && a.data().isDirect());
      assertEquals(8, a.data().remaining());
      CheckpointException e = assertThrows(CheckpointException.class, () -> f.floats("b"));
      assertMessage(e, p, "tensor 'b' has dtype I64, expected F32, F16 or BF16");
      e = assertThrows(CheckpointException.class, () -> f.get("zz"));
      assertMessage(e, p, "no tensor named 'zz'");
    }
  }

  @Test
  void namesFollowDataOffsetsAndSpacePaddingIsAllowed() throws IOException {
    String header = "{\"z\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
        + "\"y\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}      ";
    try (SafetensorsFile f = SafetensorsFile.open(file(header, new byte[2]))) {
      assertEquals(List.of("y", "z"), f.names());
    }
  }

  @Test
  void widensHalfAndBfloat16() throws IOException {
    String header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}";
    ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    // 1.0, -2.5, smallest subnormal 2^-24, +inf; then bf16 1.0, -3.0
    data.putShort((short) 0x3c00).putShort((short) 0xc100).putShort((short) 0x0001)
        .putShort((short) 0x7c00).putShort((short) 0x3f80).putShort((short) 0xc040);
    try (SafetensorsFile f = SafetensorsFile.open(file(header, data.array()))) {
      assertArrayEquals(new float[] {1f, -2.5f, 0x1p-24f, Float.POSITIVE_INFINITY},
          f.floats("h"));
      assertArrayEquals(new float[] {1f, -3f}, f.floats("b"));
    }
  }

  @Test
  void rejectsTruncatedFile() throws IOException {
    Path p = dir.resolve("short.safetensors");
    Files.write(p, new byte[] {1, 2, 3});
    assertRejected(p, "truncated: 3 bytes");
    // data shorter than the offsets say
    byte[] full = raw(GOOD_HEADER, new byte[16]);
    Path cut = dir.resolve("cut.safetensors");
    Files.write(cut, java.util.Arrays.copyOf(full, full.length - 4));
    assertRejected(cut, "truncated: tensor 'b' ends at byte 16");
  }

  @Test
  void rejectsHeaderLongerThanTheFile() throws IOException {
    byte[] bytes = raw("{}", new byte[0]);
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1000);
    Path p = dir.resolve("long.safetensors");
    Files.write(p, bytes);
    assertRejected(p, "header length 1000 exceeds the 2 bytes after the length field");
  }

  @Test
  void rejectsHeaderOver100MbDeclared() throws IOException {
    byte[] bytes = raw("{}", new byte[0]);
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 100_000_001L);
    Path p = dir.resolve("huge.safetensors");
    Files.write(p, bytes);
    assertRejected(p, "header length 100000001 exceeds the limit of 100000000 bytes");
  }

  @Test
  void rejectsBadJson() throws IOException {
    assertRejected(file("{\"a\":", new byte[0]), "header is not valid JSON");
    assertRejected(file("[]", new byte[0]), "header must be a JSON object, found an array");
  }

  @Test
  void rejectsInvalidUtf8() throws IOException {
    byte[] bytes = raw("{\"a\":1}", new byte[0]);
    bytes[10] = (byte) 0xff;
    Path p = dir.resolve("utf8.safetensors");
    Files.write(p, bytes);
    assertRejected(p, "header is not valid UTF-8");
  }

  @Test
  void rejectsDuplicateKey() throws IOException {
    String header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        + "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
    assertRejected(file(header, new byte[2]), "duplicate key \"a\"");
  }

  @Test
  void rejectsUnknownDtype() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    assertRejected(file(header, new byte[1]), "tensor 'a': unknown dtype 'F8'");
  }

  @Test
  void rejectsOverlappingOffsets() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    assertRejected(file(header, new byte[12]), "tensor 'b' [4, 12) overlaps tensor 'a' [0, 8)");
  }

  @Test
  void rejectsAHole() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    assertRejected(file(header, new byte[12]), "gap in the data buffer: bytes [4, 8)");
    String late = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    assertRejected(file(late, new byte[8]), "gap in the data buffer: bytes [0, 4)");
  }

  @Test
  void rejectsWrongNbytes() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
    assertRejected(file(header, new byte[8]),
        "tensor 'a': data_offsets span 8 bytes, expected 12");
    String reversed = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}";
    assertRejected(file(reversed, new byte[8]), "data_offsets end 0 < begin 8");
  }

  @Test
  void rejectsTrailingBytes() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    assertRejected(file(header, new byte[7]), "3 trailing bytes after the last tensor");
  }

  @Test
  void rejectsShapeOverflow() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
        + "\"data_offsets\":[0,4]}}";
    assertRejected(file(header, new byte[4]), "overflows 64 bits");
    String negative = "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}";
    assertRejected(file(negative, new byte[4]), "shape entries must be non-negative integers");
  }

  @Test
  void rejectsMissingFileAndBadMetadata() throws IOException {
    assertRejected(dir.resolve("nope.safetensors"), "file not found");
    assertRejected(file("{\"__metadata__\":{\"k\":1}}", new byte[0]),
        "__metadata__ value of 'k' must be a string");
  }

  @Test
  void useAfterCloseFails() throws IOException {
    SafetensorsFile f = SafetensorsFile.open(file(GOOD_HEADER, new byte[16]));
    f.close();
    f.close();
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> f.floats("a"));
    assertTrue(e.getMessage().contains("closed"));
  }

  private Path file(String header, byte[] data) throws IOException {
    Path p = Files.createTempFile(dir, "t", ".safetensors");
    Files.write(p, raw(header, data));
    return p;
  }

  private static byte[] raw(String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h).put(data);
    return b.array();
  }

  private static void assertRejected(Path p, String problem) {
    CheckpointException e = assertThrows(CheckpointException.class, () -> {
      try (SafetensorsFile f = SafetensorsFile.open(p)) {
        f.names();
      }
    });
    assertMessage(e, p, problem);
  }

  private static void assertMessage(CheckpointException e, Path p, String problem) {
    assertTrue(e.getMessage().startsWith(p.toString() + ": "), e.getMessage());
    assertTrue(e.getMessage().contains(problem), "expected '" + problem + "' in: "
        + e.getMessage());
    assertEquals(p, e.file());
  }
}
