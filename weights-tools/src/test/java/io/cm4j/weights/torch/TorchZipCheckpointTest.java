package io.cm4j.weights.torch;

import static io.cm4j.weights.TestData.floats;
import static io.cm4j.weights.TestData.floatsOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.pickle.PickleBytes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TorchZipCheckpointTest {
  @TempDir
  Path dir;

  static long[] l(long... v) {
    return v;
  }

  @Test
  void honoursOffsetsSizesAndStridesUnderAnyPrefix() throws IOException {
    float[] storage = new float[12];
    for (int i = 0; i < 12; i++) {
      storage[i] = i;
    }
    byte[] pkl = PickleBytes.proto(2).global("collections", "OrderedDict").op(')').reduce()
        .mark()
        .str("a").tensor("FloatStorage", "0", 12, 0, l(3, 4), l(4, 1))
        .str("t").tensor("FloatStorage", "0", 12, 0, l(4, 3), l(1, 4))
        .str("o").tensor("FloatStorage", "0", 12, 2, l(2), l(1))
        .str("s").tensor("FloatStorage", "0", 12, 1, l(2, 2), l(6, 2))
        .str("scalar").tensor("FloatStorage", "0", 12, 5, l(), l())
        .str("empty").tensor("FloatStorage", "0", 12, 40, l(0, 3), l(3, 1))
        .str("step").integer(1000) // not a tensor: skipped
        .setItems().stop().toBytes();
    Path f = new TorchZips("some model name", pkl).record("0", floats(ByteOrder.LITTLE_ENDIAN, storage))
        .write(dir.resolve("w.bin"));
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
      assertEquals(List.of("a", "t", "o", "s", "scalar", "empty"), c.names());
      assertEquals(0, c.get("empty").data().remaining());
      assertArrayEquals(new long[] {0, 3}, c.get("empty").shape());
      assertArrayEquals(storage, floatsOf(c.get("a")));
      assertArrayEquals(new float[] {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, floatsOf(c.get("t")));
      assertArrayEquals(new long[] {4, 3}, c.get("t").shape());
      assertArrayEquals(new float[] {2, 3}, floatsOf(c.get("o")));
      assertArrayEquals(new float[] {1, 3, 7, 9}, floatsOf(c.get("s")));
      assertArrayEquals(new float[] {5}, floatsOf(c.get("scalar")));
      assertEquals(DType.F32, c.info("a").dtype());
    }
  }

  @Test
  void halfAndBfloat16StoragesKeepTheirBits() throws IOException {
    byte[] raw = {1, 2, 3, 4, 5, 6};
    byte[] pkl = PickleBytes.proto(2).emptyDict().mark()
        .str("h").tensor("HalfStorage", "0", 3, 0, l(3), l(1))
        .str("b").tensor("BFloat16Storage", "1", 3, 1, l(2), l(1))
        .setItems().stop().toBytes();
    Path f = new TorchZips("x", pkl).record("0", raw).record("1", raw)
        .write(dir.resolve("h.pt"));
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
      assertEquals(DType.F16, c.get("h").dtype());
      assertEquals(ByteBuffer.wrap(raw), c.get("h").data());
      assertEquals(DType.BF16, c.get("b").dtype());
      assertEquals(ByteBuffer.wrap(raw, 2, 4), c.get("b").data());
    }
  }

  @Test
  void deflatedEntriesAreInflated() throws IOException {
    byte[] pkl = PickleBytes.proto(2).emptyDict().str("w")
        .tensor("FloatStorage", "0", 3, 0, l(3), l(1)).op('s').stop().toBytes();
    Path f = new TorchZips("d", pkl).record("0", floats(ByteOrder.LITTLE_ENDIAN, 1, 2, 3)).deflated()
        .write(dir.resolve("d.bin"));
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(f)) {
      assertArrayEquals(new float[] {1, 2, 3}, floatsOf(c.get("w")));
    }
  }

  @Test
  void refusesNonFloatTensorsMissingRecordsAndBigEndian() throws IOException {
    byte[] longs = PickleBytes.proto(2).emptyDict().str("n")
        .tensor("LongStorage", "0", 1, 0, l(1), l(1)).op('s').stop().toBytes();
    assertRefused(new TorchZips("a", longs).record("0", new byte[8]),
        "tensor 'n' is a torch.LongStorage; only float32, float16 and bfloat16");

    byte[] one = PickleBytes.proto(2).emptyDict().str("w")
        .tensor("FloatStorage", "9", 1, 0, l(1), l(1)).op('s').stop().toBytes();
    assertRefused(new TorchZips("a", one), "storage record 'a/data/9' is missing");
    assertRefused(new TorchZips("a", one).record("9", new byte[4])
        .entry("byteorder", "big".getBytes()), "byteorder is 'big'");

    byte[] listRoot = PickleBytes.proto(2).op(']').stop().toBytes();
    assertRefused(new TorchZips("a", listRoot), "expected a state dict");
    byte[] noTensors = PickleBytes.proto(2).emptyDict().str("epoch").integer(3).op('s').stop()
        .toBytes();
    assertRefused(new TorchZips("a", noTensors), "no tensors at its top level (keys: [epoch])");
  }

  @Test
  void aTensorReachingPastItsStorageIsRefused() throws IOException {
    // numel 4 in the id, but stride 3 x size 2 from offset 2 reaches element 5
    byte[] pkl = PickleBytes.proto(2).emptyDict().str("w")
        .tensor("FloatStorage", "0", 4, 2, l(2), l(3)).op('s').stop().toBytes();
    assertRefused(new TorchZips("a", pkl).record("0", new byte[16]),
        "needs 24 bytes of storage record 'a/data/0', which holds 16");
  }

  @Test
  void aZipWithoutDataPklIsNotATorchFile() throws IOException {
    Path f = dir.resolve("plain.zip");
    try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(f))) {
      zip.putNextEntry(new ZipEntry("readme.txt"));
      zip.write("hello".getBytes());
      zip.closeEntry();
    }
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> TorchZipCheckpoint.open(f));
    assertTrue(e.getMessage().contains("no data.pkl: not a torch.save file"), e.getMessage());
    assertRefused(new TorchZips("a", new byte[0]), "truncated");
  }

  private void assertRefused(TorchZips zip, String problem) throws IOException {
    Path f = zip.write(dir.resolve("refused.bin"));
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> TorchZipCheckpoint.open(f));
    assertTrue(e.getMessage().contains(problem), e.getMessage());
    assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
  }
}
