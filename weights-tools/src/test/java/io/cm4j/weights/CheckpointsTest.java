package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The four stored copies of the tiny weights, opened through {@link Checkpoints}. */
class CheckpointsTest {
  static final Path TINY = TestData.golden().resolve("tiny");
  static final Path UNET = TINY.resolve("pipeline/unet");
  static final Path SAFETENSORS = UNET.resolve("diffusion_pytorch_model.safetensors");
  static final Path BIN = UNET.resolve("diffusion_pytorch_model.bin");
  static final Path PDPARAMS = UNET.resolve("model_state.pdparams");
  static final Path OPENAI = TINY.resolve("openai/tiny_cd_test.pt");
  static final Path TINY_CONFIG = UNET.resolve("config.json");

  /** Opens one of the golden copies (the OpenAI one with the tiny config). */
  static Checkpoint open(Path p) throws CheckpointException {
    return p.equals(OPENAI) ? Checkpoints.open(p, TINY_CONFIG) : Checkpoints.open(p);
  }

  /** Asserts two checkpoints hold the same names, dtypes, shapes and bytes. */
  static void assertSameTensors(Checkpoint expected, Checkpoint actual) throws IOException {
    assertEquals(new HashSet<>(expected.names()), new HashSet<>(actual.names()),
        actual.path() + " names");
    assertEquals(expected.names().size(), actual.names().size());
    for (String name : expected.names()) {
      TensorEntry e = expected.get(name);
      TensorEntry a = actual.get(name);
      assertEquals(e.dtype(), a.dtype(), name);
      assertArrayEquals(e.shape(), a.shape(), name);
      assertEquals(actual.info(name), new TensorInfo(name, a.dtype(), a.shape()), name);
      assertEquals(e.data(), a.data(), actual.path() + ": bytes of " + name);
    }
  }

  @Test
  void theFourStoredCopiesAreBitIdentical() throws IOException {
    try (Checkpoint reference = Checkpoints.open(SAFETENSORS)) {
      assertEquals(225, reference.names().size());
      for (Path p : List.of(BIN, PDPARAMS, OPENAI)) {
        try (Checkpoint c = open(p)) {
          assertSameTensors(reference, c);
        }
      }
    }
  }

  @Test
  void formatsAreRecognisedByContent() throws IOException {
    Map<Path, String> formats = new LinkedHashMap<>();
    formats.put(SAFETENSORS, "safetensors");
    formats.put(BIN, "torch");
    formats.put(PDPARAMS, "paddle");
    formats.put(OPENAI, "openai");
    for (Map.Entry<Path, String> e : formats.entrySet()) {
      try (Checkpoint c = open(e.getKey())) {
        assertEquals(e.getValue(), c.format(), e.getKey().toString());
        assertEquals(e.getKey(), c.path());
      }
    }
    assertEquals("torch", Checkpoints.detect(OPENAI));
    assertEquals("pickle", Checkpoints.detect(PDPARAMS));
  }

  @Test
  void aDirectoryOpensItsSafetensors() throws IOException {
    try (Checkpoint c = Checkpoints.open(TINY.resolve("pipeline"))) {
      assertEquals("safetensors", c.format());
      assertEquals(SAFETENSORS, c.path());
    }
    assertEquals(SAFETENSORS, Checkpoints.weightsFile(UNET));
  }

  @Test
  void configsBesideTheWeightsAreFound() throws IOException {
    String config = Files.readString(TINY_CONFIG);
    String scheduler = Files.readString(TINY.resolve("pipeline/scheduler/scheduler_config.json"));
    for (Path p : List.of(SAFETENSORS, BIN, PDPARAMS)) {
      try (Checkpoint c = Checkpoints.open(p)) {
        assertEquals(config, c.matchingConfig().orElseThrow());
        assertEquals(scheduler, c.schedulerConfig().orElseThrow());
      }
    }
    try (Checkpoint c = open(OPENAI)) {
      assertEquals(config, c.matchingConfig().orElseThrow());
      assertTrue(c.schedulerConfig().isEmpty());
    }
  }

  @Test
  void anOpenAIFileWithAnUnknownNameNeedsAConfig(@TempDir Path dir) throws IOException {
    Path unnamed = Files.copy(OPENAI, dir.resolve("tiny_cd.pt"));
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> Checkpoints.open(unnamed));
    assertTrue(e.getMessage().contains("original OpenAI naming"), e.getMessage());
    assertTrue(e.getMessage().contains("cd_imagenet64_l2"), e.getMessage());
  }

  @Test
  void anOpenAIFileWithTheWrongConfigIsRefused() {
    Path lsun = TestData.golden().resolve("lsun_mini/config.json");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> Checkpoints.open(OPENAI, lsun));
    assertTrue(e.getMessage().contains("is the UNet config the one for this checkpoint?"),
        e.getMessage());
  }

  @Test
  void inspectSummarises() throws IOException {
    try (Checkpoint c = Checkpoints.open(PDPARAMS)) {
      CheckpointSummary s = c.inspect();
      assertEquals("paddle", s.format());
      assertEquals(225, s.tensors());
      assertEquals(Map.of(DType.F32, 225), s.dtypes());
      assertEquals(s.parameters() * 4, s.bytes());
      assertTrue(s.configKnown());
      assertTrue(s.toString().contains("F32 x225"), s.toString());
    }
  }

  @Test
  void keyCheckListsEveryProblem() throws IOException {
    Map<String, long[]> expected = new LinkedHashMap<>();
    try (Checkpoint c = Checkpoints.open(BIN)) {
      for (String name : c.names()) {
        expected.put(name, c.info(name).shape());
      }
      assertTrue(c.check(expected).ok());
      assertEquals("ok", c.check(expected).describe(5));
      expected.remove("conv_in.bias");
      expected.put("conv_in.weight", new long[] {1, 2});
      expected.put("extra.weight", new long[] {3});
      KeyCheck k = c.check(expected);
      assertFalse(k.ok());
      assertEquals(List.of("extra.weight"), k.missing());
      assertEquals(List.of("conv_in.bias"), k.unexpected());
      assertEquals(List.of("conv_in.weight: expected [1, 2], found [32, 3, 3, 3]"), k.misShaped());
      assertTrue(k.describe(5).contains("1 missing:\n  extra.weight"), k.describe(5));
    }
  }

  @Test
  void closedCheckpointsRefuseUse() throws IOException {
    for (Path p : List.of(SAFETENSORS, BIN, PDPARAMS, OPENAI)) {
      Checkpoint c = open(p);
      c.close();
      c.close(); // twice is harmless
      assertThrows(IllegalStateException.class, c::names, p.toString());
    }
  }

  @Test
  void unknownAndLegacyFormatsAreRefused(@TempDir Path dir) throws IOException {
    Path text = dir.resolve("notes.bin");
    Files.writeString(text, "hello, not weights");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> Checkpoints.open(text));
    assertTrue(e.getMessage().contains("not a supported checkpoint (first bytes 68 65 6c"),
        e.getMessage());

    Path empty = Files.createFile(dir.resolve("empty.pt"));
    e = assertThrows(CheckpointException.class, () -> Checkpoints.open(empty));
    assertTrue(e.getMessage().contains("empty file"), e.getMessage());

    // torch < 1.6: PROTO 2, then the magic number 0x1950a86a20f9469cfc6c as LONG1
    Path legacy = dir.resolve("old.pt");
    Files.write(legacy, new byte[] {(byte) 0x80, 2, (byte) 0x8a, 10, 0x6c, (byte) 0xfc,
        (byte) 0x9c, 0x46, (byte) 0xf9, 0x20, 0x6a, (byte) 0xa8, 0x50, 0x19, '.'});
    e = assertThrows(CheckpointException.class, () -> Checkpoints.open(legacy));
    assertTrue(e.getMessage().contains("unsupported legacy torch format"), e.getMessage());
    assertTrue(e.getMessage().contains("re-save it with torch>=1.6"), e.getMessage());

    e = assertThrows(CheckpointException.class, () -> Checkpoints.open(dir));
    assertTrue(e.getMessage().contains("no weights file"), e.getMessage());
    e = assertThrows(CheckpointException.class,
        () -> Checkpoints.open(dir.resolve("missing.safetensors")));
    assertTrue(e.getMessage().contains("file not found"), e.getMessage());
  }

  @Test
  void dataOfMappedFormatsIsDirectAndAligned() throws IOException {
    for (Path p : List.of(SAFETENSORS, BIN, PDPARAMS, OPENAI)) {
      try (Checkpoint c = open(p)) {
        for (String name : c.names()) {
          ByteBuffer b = c.get(name).data();
          assertTrue(b.isDirect(), p + " " + name);
          assertEquals(0, b.alignmentOffset(b.position(), 4), p + " " + name);
        }
      }
    }
  }
}
