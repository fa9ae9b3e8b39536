package io.cm4j.weights.paddle;

import static io.cm4j.weights.TestData.floats;
import static io.cm4j.weights.TestData.floatsOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.TestData;
import io.cm4j.weights.TensorEntry;
import io.cm4j.weights.pickle.NumpyArray;
import io.cm4j.weights.pickle.PickleBytes;
import io.cm4j.weights.pickle.PickleReader;
import io.cm4j.weights.pickle.PickleSource;
import io.cm4j.weights.pickle.PyDict;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PaddleCheckpointTest {
  @TempDir
  Path dir;

  @Test
  void linearWeightsAreExactlyTheListedOnes() {
    for (String name : List.of("time_embedding.linear_1.weight",
        "time_embedding.linear_2.weight", "down_blocks.0.resnets.1.time_emb_proj.weight",
        "mid_block.attentions.0.to_q.weight", "up_blocks.0.attentions.2.to_k.weight",
        "up_blocks.0.attentions.2.to_v.weight", "mid_block.attentions.0.to_out.0.weight")) {
      assertTrue(PaddleCheckpoint.isLinearWeight(name), name);
    }
    for (String name : List.of("class_embedding.weight", "conv_in.weight",
        "time_embedding.linear_1.bias", "mid_block.attentions.0.to_q.bias",
        "mid_block.attentions.0.group_norm.weight", "down_blocks.1.resnets.0.conv_shortcut.weight",
        "time_embedding.cond_proj.weight")) {
      assertFalse(PaddleCheckpoint.isLinearWeight(name), name);
    }
  }

  @Test
  void goldenLinearWeightsAreStoredTransposedAndComeBackInTorchLayout() throws Exception {
    Path file = TestData.golden().resolve("tiny/pipeline/unet/model_state.pdparams");
    PyDict raw;
    try (FileChannel ch = FileChannel.open(file)) {
      raw = (PyDict) PickleReader.load(PickleSource.of(ch, 0, ch.size()),
          PickleReader.NO_PERSISTENT_IDS);
    }
    NumpyArray stored = (NumpyArray) raw.get("time_embedding.linear_1.weight");
    assertArrayEquals(new long[] {32, 128}, stored.shape());
    NumpyArray embedding = (NumpyArray) raw.get("class_embedding.weight");
    try (PaddleCheckpoint c = PaddleCheckpoint.open(file)) {
      TensorEntry t = c.get("time_embedding.linear_1.weight");
      assertArrayEquals(new long[] {128, 32}, t.shape());
      ByteBuffer s = stored.data().order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer d = t.data().order(ByteOrder.LITTLE_ENDIAN);
      for (int out = 0; out < 128; out++) {
        for (int in = 0; in < 32; in++) {
          assertEquals(s.getInt(4 * (in * 128 + out)), d.getInt(4 * (out * 32 + in)));
        }
      }
      assertArrayEquals(embedding.shape(), c.get("class_embedding.weight").shape());
      assertEquals(embedding.data(), c.get("class_embedding.weight").data());
    }
  }

  @Test
  void protocol2SplitArraysAreJoinedThenTransposed() throws IOException {
    // to_q.weight stored [in=2, out=3] = 0..5, split into slices of 4 and 2 elements;
    // conv.weight [1, 4] split into two slices of 2.
    String q = "mid_block.attentions.0.to_q.weight";
    PickleBytes p = PickleBytes.proto(2).emptyDict().mark();
    p.str(q + "@@.0").ndarray("f4", '<', new long[] {4}, false,
        floats(ByteOrder.LITTLE_ENDIAN, 0, 1, 2, 3), true);
    p.str(q + "@@.1").ndarray("f4", '<', new long[] {2}, false,
        floats(ByteOrder.LITTLE_ENDIAN, 4, 5), true);
    p.str("conv.weight@@.0").ndarray("f4", '<', new long[] {2}, false,
        floats(ByteOrder.LITTLE_ENDIAN, 9, 8), true);
    p.str("conv.weight@@.1").ndarray("f4", '<', new long[] {2}, false,
        floats(ByteOrder.LITTLE_ENDIAN, 7, 6), true);
    p.str("conv.bias").ndarray("f4", '<', new long[] {1}, false,
        floats(ByteOrder.LITTLE_ENDIAN, 42), true);
    p.str(PaddleCheckpoint.SPLIT_INFO).emptyDict().mark();
    p.str(q).emptyDict().mark().str("OriginShape").ints(2, 3).str("slices").op(']').mark()
        .str(q + "@@.0").str(q + "@@.1").op('e').setItems();
    p.str("conv.weight").emptyDict().mark().str("OriginShape").ints(1, 4).str("slices")
        .op(']').mark().str("conv.weight@@.0").str("conv.weight@@.1").op('e').setItems();
    p.setItems();
    p.str("StructuredToParameterName@@").emptyDict().str("a").str("b").op('s');
    Path f = Files.write(dir.resolve("split.pdparams"), p.setItems().stop().toBytes());
    try (PaddleCheckpoint c = PaddleCheckpoint.open(f)) {
      assertEquals(List.of(q, "conv.weight", "conv.bias"), c.names());
      assertArrayEquals(new long[] {3, 2}, c.info(q).shape());
      assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, floatsOf(c.get(q)));
      assertArrayEquals(new long[] {1, 4}, c.get("conv.weight").shape());
      assertArrayEquals(new float[] {9, 8, 7, 6}, floatsOf(c.get("conv.weight")));
      assertArrayEquals(new float[] {42}, floatsOf(c.get("conv.bias")));
    }
  }

  @Test
  void fortranOrderBigEndianAndBfloat16() throws IOException {
    PickleBytes p = PickleBytes.proto(3).emptyDict().mark();
    // [[1, 2, 3], [4, 5, 6]] in column-major order
    p.str("f").ndarray("f4", '<', new long[] {2, 3}, true,
        floats(ByteOrder.LITTLE_ENDIAN, 1, 4, 2, 5, 3, 6), false);
    p.str("be").ndarray("f4", '>', new long[] {2}, false, floats(ByteOrder.BIG_ENDIAN, 1.5f, -2),
        false);
    p.str("bf").ndarray("u2", '<', new long[] {2}, false, new byte[] {(byte) 0x80, 0x3f, 0, 0x40},
        false);
    Path f = Files.write(dir.resolve("misc.pdparams"), p.setItems().stop().toBytes());
    try (PaddleCheckpoint c = PaddleCheckpoint.open(f)) {
      assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, floatsOf(c.get("f")));
      assertArrayEquals(new float[] {1.5f, -2}, floatsOf(c.get("be")));
      assertEquals(DType.BF16, c.get("bf").dtype());
      assertEquals(ByteBuffer.wrap(new byte[] {(byte) 0x80, 0x3f, 0, 0x40}), c.get("bf").data());
    }
  }

  @Test
  void refusesOtherDtypesAndNonDicts() throws IOException {
    byte[] f8 = PickleBytes.proto(3).emptyDict().str("w")
        .ndarray("f8", '<', new long[] {1}, false, new byte[8], false).op('s').stop().toBytes();
    assertRefused(f8, "array 'w' has numpy dtype 'f8'");
    assertRefused(PickleBytes.proto(3).op(']').stop().toBytes(), "expected a state dict");
    assertRefused(PickleBytes.proto(3).emptyDict().stop().toBytes(), "holds no numpy arrays");
    byte[] badSplit = PickleBytes.proto(3).emptyDict().str(PaddleCheckpoint.SPLIT_INFO)
        .emptyDict().str("w").emptyDict().str("slices").op(']').str("w@@.0").op('a', 's')
        .op('s', 's').stop().toBytes();
    assertRefused(badSplit, "names slice 'w@@.0', which is not an array of the file");
  }

  private void assertRefused(byte[] pickle, String problem) throws IOException {
    Path f = Files.write(dir.resolve("bad.pdparams"), pickle);
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> PaddleCheckpoint.open(f));
    assertTrue(e.getMessage().contains(problem), e.getMessage());
  }
}
