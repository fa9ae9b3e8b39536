package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WeightsConverterTest {
  @TempDir
  Path dir;

  @Test
  void everyFormatRoundTripsThroughSafetensors() throws IOException {
    for (Path in : List.of(CheckpointsTest.SAFETENSORS, CheckpointsTest.BIN,
        CheckpointsTest.PDPARAMS, CheckpointsTest.OPENAI)) {
      Path out = dir.resolve("model-" + in.getFileName());
      try (Checkpoint c = CheckpointsTest.open(in)) {
        WeightsConverter.Result r = WeightsConverter.convert(c, out,
            WeightsConverter.Options.defaults());
        assertEquals(225, r.tensors());
        assertEquals(out.resolve("unet/diffusion_pytorch_model.safetensors"), r.weights());
        try (Checkpoint back = Checkpoints.open(out)) {
          assertEquals("safetensors", back.format());
          CheckpointsTest.assertSameTensors(c, back);
          assertEquals(c.matchingConfig(), back.matchingConfig());
        }
      }
      try (SafetensorsFile f = SafetensorsFile.open(out.resolve(
          "unet/diffusion_pytorch_model.safetensors"))) {
        assertEquals("pt", f.metadata().get("format"));
      }
      assertNoTemporaries();
    }
  }

  @Test
  void writesSchedulerAndModelIndexWhenKnown() throws IOException {
    Path out = dir.resolve("pipeline");
    WeightsConverter.Result r = WeightsConverter.convert(CheckpointsTest.BIN, out,
        WeightsConverter.Options.defaults());
    assertTrue(r.schedulerWritten());
    assertEquals(Files.readString(CheckpointsTest.TINY.resolve(
        "pipeline/scheduler/scheduler_config.json")),
        Files.readString(out.resolve("scheduler/scheduler_config.json")));
    assertEquals(Json.parseObject(Files.readString(CheckpointsTest.TINY.resolve(
        "pipeline/model_index.json"))).get("unet"),
        Json.parseObject(Files.readString(out.resolve("model_index.json"))).get("unet"));
    assertEquals(Files.readString(CheckpointsTest.TINY_CONFIG),
        Files.readString(out.resolve("unet/config.json")));
  }

  @Test
  void fp16OutputRoundsEveryValue() throws IOException {
    Path out = dir.resolve("half");
    WeightsConverter.convert(CheckpointsTest.PDPARAMS, out,
        new WeightsConverter.Options(DType.F16, null, false));
    try (Checkpoint ref = Checkpoints.open(CheckpointsTest.SAFETENSORS);
        Checkpoint half = Checkpoints.open(out)) {
      assertEquals(ref.names().size(), half.names().size());
      for (String name : ref.names()) {
        TensorEntry h = half.get(name);
        assertEquals(DType.F16, h.dtype(), name);
        java.nio.FloatBuffer f = ref.get(name).data().order(ByteOrder.LITTLE_ENDIAN)
            .asFloatBuffer();
        for (int i = 0; i < h.numel(); i++) {
          short bits = h.data().order(ByteOrder.LITTLE_ENDIAN).getShort(2 * i);
          assertEquals(TensorOps.floatToHalf(f.get(i)), bits, name + "[" + i + "]");
        }
      }
    }
  }

  @Test
  void anExistingModelIsReplacedOnlyWhenAsked() throws IOException {
    Path out = Files.createDirectories(dir.resolve("taken"));
    Files.writeString(out.resolve("keep.txt"), "mine");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(CheckpointsTest.BIN, out,
            WeightsConverter.Options.defaults()));
    assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    assertTrue(Files.exists(out.resolve("keep.txt")));
    assertNoTemporaries();

    WeightsConverter.convert(CheckpointsTest.BIN, out,
        new WeightsConverter.Options(null, null, true));
    assertFalse(Files.exists(out.resolve("keep.txt")));
    assertTrue(Files.exists(out.resolve("unet/diffusion_pytorch_model.safetensors")));
    assertNoTemporaries();

    Path empty = Files.createDirectories(dir.resolve("empty"));
    WeightsConverter.convert(CheckpointsTest.BIN, empty, WeightsConverter.Options.defaults());
    assertTrue(Files.exists(empty.resolve("unet/config.json")));
  }

  @Test
  void weightsWithoutAKnownConfigAreRefusedAndLeaveNothing(@TempDir Path lonely)
      throws IOException {
    Path bin = Files.copy(CheckpointsTest.BIN, lonely.resolve("weights.bin"));
    Path out = dir.resolve("nope");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(bin, out, WeightsConverter.Options.defaults()));
    assertTrue(e.getMessage().contains("no UNet config is known"), e.getMessage());
    assertFalse(Files.exists(out));
    WeightsConverter.convert(bin, out,
        new WeightsConverter.Options(null, CheckpointsTest.TINY_CONFIG, false));
    assertTrue(Files.exists(out.resolve("unet/config.json")));
    assertFalse(Files.exists(out.resolve("model_index.json")));
  }

  private void assertNoTemporaries() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "temporaries");
    }
  }
}
