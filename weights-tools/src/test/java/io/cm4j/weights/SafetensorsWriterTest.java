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
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
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
    // the target is a non-empty directory: refused, not replaced
    Path target = dir.resolve("target.safetensors");
    Files.createDirectories(target.resolve("child"));
    SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {1}, new float[1]);
    IOException e = assertThrows(IOException.class, () -> w.write(target));
    assertTrue(e.getMessage().endsWith(target + ": is a folder"), e.getMessage());
    // a tensor that fails halfway through the data: the old file stays, no temporary is left
    SafetensorsWriter failing = new SafetensorsWriter()
        .addFloats("a", new long[] {1}, new float[1])
        .addLazy("b", DType.F32, new long[] {1}, () -> {
          throw new IOException("source gone");
        });
    assertThrows(IOException.class, () -> failing.write(existing));
    assertEquals(List.of("keep.safetensors", "target.safetensors"), names());
    assertEquals("old", Files.readString(existing));
  }

  @Test
  void aFifoIsRefusedAndStaysAFifo() throws Exception {
    Path fifo = TestData.mkfifo(dir.resolve("f.safetensors"));
    SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {1}, new float[1]);
    IOException e = assertThrows(IOException.class, () -> w.write(fifo));
    assertTrue(e.getMessage().endsWith(fifo + ": not a regular file"), e.getMessage());
    assertTrue(TestData.isOther(fifo), "still a FIFO, not replaced by a regular file");
    assertEquals(List.of("f.safetensors"), names());
  }

  @Test
  void aSymbolicLinkIsWrittenThroughAndTheFileKeepsItsPermissions() throws IOException {
    Path realDir = Files.createDirectory(dir.resolve("real"));
    Path real = realDir.resolve("model.safetensors");
    Files.writeString(real, "old");
    Set<PosixFilePermission> groupRead = PosixFilePermissions.fromString("rw-r-----");
    Set<PosixFilePermission> plain = TestData.plainCreatePermissions(dir);
    Files.setPosixFilePermissions(real, groupRead);
    Path link = Files.createSymbolicLink(dir.resolve("link.safetensors"),
        Path.of("real/model.safetensors"));
    new SafetensorsWriter().addFloats("a", new long[] {2}, new float[] {1f, 2f}).write(link);
    assertTrue(Files.isSymbolicLink(link), "the link stays a link");
    try (SafetensorsFile f = SafetensorsFile.open(real)) {
      assertArrayEquals(new float[] {1f, 2f}, f.floats("a"));
    }
    assertEquals(groupRead, Files.getPosixFilePermissions(real), "the replaced file's");
    assertEquals(List.of("link.safetensors", "real"), names());
    try (Stream<Path> files = Files.list(realDir)) {
      assertEquals(List.of(real), files.toList(), "the temporary was beside the real file");
    }
    // a new file gets what a plain create gives (0666 less the umask), not owner-only
    Path fresh = dir.resolve("new.safetensors");
    new SafetensorsWriter().addFloats("a", new long[] {1}, new float[1]).write(fresh);
    assertEquals(plain, Files.getPosixFilePermissions(fresh));
  }

  @Test
  void aLinkToNothingIsRefusedAndNothingIsCreated() throws IOException {
    Path link = Files.createSymbolicLink(dir.resolve("dangling.safetensors"),
        Path.of("missing.safetensors"));
    SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {1}, new float[1]);
    IOException e = assertThrows(IOException.class, () -> w.write(link));
    assertTrue(e.getMessage().endsWith(link
        + ": is a symbolic link to missing.safetensors, which does not exist"), e.getMessage());
    assertTrue(Files.isSymbolicLink(link));
    assertEquals(List.of("dangling.safetensors"), names());
  }

  /** The names in the test folder, sorted. */
  private List<String> names() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
