package io.cm4j.weights.torch;

import static io.cm4j.weights.TestData.floats;
import static io.cm4j.weights.TestData.floatsOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.pickle.PickleBytes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Entries that declare more than their storage, more than they hold, or more than memory or a
 * buffer allows: each refused with a checkpoint error naming the entry. Size mismatches are
 * refused when the file is opened, before anything is inflated.
 */
class ZipBombTest {
  @TempDir Path dir;

  /** A state dict of one tensor 'w' viewing {@code size} floats of a storage of {@code numel}. */
  private static byte[] pickle(long numel, long offset, long size) {
    return PickleBytes.proto(2).emptyDict().str("w")
        .tensor("FloatStorage", "0", numel, offset, new long[] {size}, new long[] {1})
        .op('s').stop().toBytes();
  }

  @Test
  void aRecordLongerThanItsStorageIsRefusedWhateverItsCompression() throws IOException {
    // 16 MiB of zeros deflate to 16 KB; the storage holds 3 floats
    assertRefused(new TorchZips("a", pickle(3, 0, 3)).record("0", new byte[16 << 20]).deflated(),
        "storage record 'a/data/0' of tensor 'w' is 16777216 bytes (deflated), but its storage "
        + "of 3 torch.FloatStorage elements is 12 bytes");
    assertRefused(new TorchZips("a", pickle(3, 0, 3)).record("0", new byte[16]),
        "storage record 'a/data/0' of tensor 'w' is 16 bytes (stored), but its storage of 3 "
        + "torch.FloatStorage elements is 12 bytes");
  }

  @Test
  void aViewIntoALargerStorageReadsItsPart() throws IOException {
    Path f = new TorchZips("a", pickle(5, 3, 2)).record("0", floats(ByteOrder.LITTLE_ENDIAN,
        0, 1, 2, 3, 4)).deflated().write(dir.resolve("view.bin"));
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
      assertArrayEquals(new float[] {3, 4}, floatsOf(c.get("w")));
    }
  }

  @Test
  void aDataPklOverItsLimitIsRefusedBeforeInflating() throws IOException {
    // 65 MiB of zeros deflate to 65 KB; a state dict's pickle is about 150 bytes a tensor
    assertRefused(new TorchZips("a", new byte[65 << 20]).deflated(),
        "zip entry 'a/data.pkl' is 68157440 bytes, more than the limit of 67108864");
  }

  @Test
  void aDeflatedRecordIsInflatedOnce() throws IOException {
    Path f = new TorchZips("a", pickle(3, 0, 3)).record("0", floats(ByteOrder.LITTLE_ENDIAN,
        1, 2, 3)).deflated().write(dir.resolve("once.bin"));
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
      assertArrayEquals(new float[] {1, 2, 3}, floatsOf(c.get("w")));
      Files.delete(f); // a second inflation would have to read the file again
      assertArrayEquals(new float[] {1, 2, 3}, floatsOf(c.get("w")));
    }
  }

  @Test
  void aRecordInflatingToMoreThanItDeclaresIsRefused() throws IOException {
    Path f = new TorchZips("a", pickle(3, 0, 3)).record("0", new byte[1 << 20]).deflated()
        .write(dir.resolve("liar.bin"));
    declareSize(f, "a/data/0", 12); // the central directory now matches the storage
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
      CheckpointException e = assertThrows(CheckpointException.class, () -> c.get("w"));
      assertTrue(e.getMessage().contains("zip entry 'a/data/0' inflates to more than its "
          + "declared 12 bytes"), e.getMessage());
    }
  }

  @Test
  void anAllocationFailureIsACheckpointErrorNamingTheEntry() throws Exception {
    long numel = 8L << 20; // 32 MiB of floats, in a JVM allowed 8 MiB of direct memory
    Path f = new TorchZips("a", pickle(numel, 0, numel)).record("0", new byte[32 << 20])
        .deflated().write(dir.resolve("big.bin"));
    List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:MaxDirectMemorySize=8m", "-cp", System.getProperty("java.class.path"),
        InflateProbe.class.getName(), f.toString(), "w");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertEquals(0, p.waitFor(), out);
    assertTrue(out.startsWith("refused " + f + ": zip entry 'a/data/0' (33554432 bytes "
        + "inflated): cannot allocate "), out);
  }

  @Test
  void aStoredRecordOver2GibIsRefused() throws IOException {
    long bytes = (2L << 30) + 8; // a sparse file: no disk, no time
    Path f = new TorchZips("a", pickle(bytes / 4, 0, 4)).writeWithSparseRecord(
        dir.resolve("huge.bin"), "0", bytes);
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> TorchZipCheckpoint.open(f));
    assertTrue(e.getMessage().contains("storage record 'a/data/0' of tensor 'w' is 2147483656 "
        + "bytes; records over 2 GiB are not supported"), e.getMessage());
  }

  /** FileChannel.map takes at most 2 GiB: a longer deflated record is refused before it. */
  @Test
  void aDeflatedRecordOver2GibCompressedIsRefused() throws IOException {
    long compressed = (2L << 30) + 8; // a sparse file again
    Path f = new TorchZips("a", pickle(4, 0, 4)).writeWithSparseRecord(dir.resolve("deep.bin"),
        "0", compressed, 16, true);
    CheckpointException e = assertThrows(CheckpointException.class, () -> {
      try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
        c.get("w");
      }
    });
    assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
    assertTrue(e.getMessage().contains("zip entry 'a/data/0' is 2147483656 compressed bytes"),
        e.getMessage());
  }

  /** Rewrites the size the central directory gives {@code name}. */
  private static void declareSize(Path zip, String name, int size) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(zip)).order(ByteOrder.LITTLE_ENDIAN);
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i + 46 + n.length <= b.limit(); i++) {
      if (b.getInt(i) == 0x02014b50 && b.getShort(i + 28) == n.length
          && ByteBuffer.wrap(n).equals(b.slice(i + 46, n.length))) {
        b.putInt(i + 24, size);
        Files.write(zip, b.array());
        return;
      }
    }
    throw new AssertionError(name + " is not in " + zip);
  }

  private void assertRefused(TorchZips zip, String problem) throws IOException {
    Path f = zip.write(dir.resolve("refused.bin"));
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> TorchZipCheckpoint.open(f));
    assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
    assertTrue(e.getMessage().contains(problem), e.getMessage());
  }
}
