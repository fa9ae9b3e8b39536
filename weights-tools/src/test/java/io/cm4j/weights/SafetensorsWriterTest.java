package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {
  @TempDir Path dir;

  @Test
  void roundTripsFloatsLongsAndMetadata() throws IOException {
    float[] big = new float[200_000]; // more than one write chunk
    for (int i = 0; i < big.length; i++) {
      big[i] = i * 0.5f - 7f;
    }
    FloatBuffer direct = ByteBuffer.allocateDirect(12).order(ByteOrder.BIG_ENDIAN).asFloatBuffer();
    direct.put(new float[] {1f, 2f, 3f}).flip();
    Path out = dir.resolve("out.safetensors");
    new SafetensorsWriter()
        .metadata("call", "{\"x\": 1}")
        .addFloats("big", new long[] {2, 100_000}, big)
        .addFloats("direct", new long[] {3}, direct)
        .addLongs("labels", new long[] {2}, new long[] {7, -1})
        .write(out);
    try (SafetensorsFile f = SafetensorsFile.open(out)) {
      assertEquals(List.of("big", "direct", "labels"), f.names());
      assertEquals("{\"x\": 1}", f.metadata().get("call"));
      assertArrayEquals(big, f.floats("big"));
      assertArrayEquals(new long[] {2, 100_000}, f.get("big").shape());
      assertArrayEquals(new float[] {1f, 2f, 3f}, f.floats("direct"));
      assertArrayEquals(new long[] {7, -1}, f.longs("labels"));
    }
    // the header is padded so tensor data starts 8-byte aligned
    ByteBuffer head = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(0, head.getLong(0) % 8);
  }

  @Test
  void rejectsMismatchedSizesAndDuplicates() {
    SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {2}, new float[2]);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> w.addFloats("b", new long[] {3}, new float[2]));
    assertTrue(e.getMessage().contains("shape needs 12 bytes of F32, found 8"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> w.addLongs("a", new long[] {1}, new long[1]));
    assertTrue(e.getMessage().contains("added twice"), e.getMessage());
  }

  @Test
  void failedWriteLeavesNothingBehind() throws IOException {
    Path existing = dir.resolve("keep.safetensors");
    Files.writeString(existing, "old");
    // the target is a non-empty directory: the rename must fail after the data was written
    Path target = dir.resolve("target.safetensors");
    Files.createDirectories(target.resolve("child"));
    SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {1}, new float[1]);
    assertThrows(IOException.class, () -> w.write(target));
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(List.of("keep.safetensors", "target.safetensors"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    assertEquals("old", Files.readString(existing));
  }
}
