package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
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
    Path out = dir.resolve("model");
    WeightsConverter.convert(CheckpointsTest.BIN, out,
        new WeightsConverter.Options(DType.F16, null, false));
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(CheckpointsTest.BIN, out,
            WeightsConverter.Options.defaults()));
    assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    assertNoTemporaries();

    WeightsConverter.convert(CheckpointsTest.BIN, out,
        new WeightsConverter.Options(null, null, true));
    try (Checkpoint c = Checkpoints.open(out)) {
      assertEquals(DType.F32, c.info(c.names().get(0)).dtype()); // the new model, not the old
    }
    assertNoTemporaries();

    Path empty = Files.createDirectories(dir.resolve("empty"));
    WeightsConverter.convert(CheckpointsTest.BIN, empty, WeightsConverter.Options.defaults());
    assertTrue(Files.exists(empty.resolve("unet/config.json")));
  }

  /** Overwriting replaces a model convert wrote, never a folder or file holding anything else. */
  @Test
  void overwriteRefusesAFolderHoldingOtherFilesAndAFile() throws IOException {
    WeightsConverter.Options overwrite = new WeightsConverter.Options(null, null, true);
    Path out = Files.createDirectories(dir.resolve("taken"));
    Files.writeString(out.resolve("keep.txt"), "mine");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(CheckpointsTest.BIN, out, overwrite));
    assertEquals(out + ": not replaced: it holds what convert does not write (keep.txt); "
        + "overwrite replaces only a model folder convert wrote", e.getMessage());
    assertEquals("mine", Files.readString(out.resolve("keep.txt")));

    // a model convert wrote, with more beside and inside it: the first few named
    Path model = dir.resolve("model");
    WeightsConverter.convert(CheckpointsTest.BIN, model, overwrite);
    Files.writeString(model.resolve("unet/notes.txt"), "mine");
    Files.createDirectories(model.resolve("vae"));
    Files.writeString(model.resolve("README.md"), "mine");
    Files.writeString(model.resolve("a.txt"), "mine");
    Files.writeString(model.resolve("b.txt"), "mine");
    e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(CheckpointsTest.BIN, model, overwrite));
    assertTrue(e.getMessage().contains("(README.md, a.txt, b.txt and 2 more)"), e.getMessage());
    assertTrue(Files.exists(model.resolve("unet/notes.txt")));
    for (String mine : List.of("unet/notes.txt", "vae", "README.md", "a.txt", "b.txt")) {
      Files.delete(model.resolve(mine));
    }
    WeightsConverter.convert(CheckpointsTest.BIN, model, overwrite);

    Path file = Files.writeString(dir.resolve("file"), "mine");
    for (boolean replace : new boolean[] {false, true}) {
      e = assertThrows(CheckpointException.class, () -> WeightsConverter.convert(
          CheckpointsTest.BIN, file, new WeightsConverter.Options(null, null, replace)));
      assertEquals(file + ": is a file, not a folder; choose a folder to write the model in",
          e.getMessage());
      assertEquals("mine", Files.readString(file));
    }
    assertNoTemporaries();
  }

  /** OUT may not be the input, hold it, or lie inside it: overwriting would delete the input. */
  @Test
  void anOutputThatIsHoldsOrIsInsideTheInputIsRefused() throws IOException {
    WeightsConverter.Options overwrite = new WeightsConverter.Options(null, null, true);
    Path models = Files.createDirectories(dir.resolve("models"));
    Path input = Files.createDirectories(models.resolve("in"));
    for (Path f : List.of(CheckpointsTest.SAFETENSORS, CheckpointsTest.TINY_CONFIG)) {
      Files.copy(f, input.resolve(f.getFileName()));
    }
    Files.writeString(input.resolve("notes.txt"), "mine");
    List<String> before = names(input);
    Path weights = input.resolve("diffusion_pytorch_model.safetensors");

    CheckpointException e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(weights, input, overwrite));
    assertEquals(input + ": holds the input " + weights + ", which writing the model there "
        + "would replace; choose a folder apart from it", e.getMessage());
    e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(input, models, overwrite));
    assertTrue(e.getMessage().startsWith(models + ": holds the input "), e.getMessage());
    e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(weights, weights, overwrite));
    assertTrue(e.getMessage().contains(": is the input itself"), e.getMessage());
    e = assertThrows(CheckpointException.class, () -> WeightsConverter.convert(input,
        input.resolve("converted"), WeightsConverter.Options.defaults()));
    assertEquals(input.resolve("converted") + ": is inside the input " + input
        + "; choose a folder apart from it", e.getMessage());
    // through a link to the folder, too
    Path link = Files.createSymbolicLink(dir.resolve("link"), input);
    e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(weights, link, overwrite));
    assertTrue(e.getMessage().contains("holds the input"), e.getMessage());

    assertEquals(before, names(input));
    assertEquals("mine", Files.readString(input.resolve("notes.txt")));
    assertEquals(List.of("in"), names(models));
  }

  /** The model folder gets the permissions any new folder gets, not a temporary's 0700. */
  @Test
  void theModelFolderHasTheDefaultPermissions() throws IOException {
    assumeTrue(dir.getFileSystem().supportedFileAttributeViews().contains("posix"));
    Path out = dir.resolve("model");
    WeightsConverter.convert(CheckpointsTest.BIN, out, WeightsConverter.Options.defaults());
    Path plain = Files.createDirectory(dir.resolve("plain"));
    assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(out));
  }

  /** A place that cannot be written is refused (as bad input) before anything is written. */
  @Test
  void anUnwritablePlaceIsRefusedUpFront() throws IOException {
    Path file = Files.writeString(dir.resolve("file"), "mine");
    Path under = file.resolve("model");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> WeightsConverter.convert(CheckpointsTest.BIN, under,
            WeightsConverter.Options.defaults()));
    assertEquals(under + ": " + file + " is not a folder", e.getMessage());

    Path readOnly = Files.createDirectory(dir.resolve("read-only"));
    assumeTrue(dir.getFileSystem().supportedFileAttributeViews().contains("posix"));
    Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r-xr-xr-x"));
    try {
      assumeFalse(Files.isWritable(readOnly), "every folder is writable to root");
      Path out = readOnly.resolve("a/model");
      e = assertThrows(CheckpointException.class,
          () -> WeightsConverter.convert(CheckpointsTest.BIN, out,
              WeightsConverter.Options.defaults()));
      assertEquals(out + ": folder " + readOnly + " is not writable", e.getMessage());
    } finally {
      Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  /** A write that fails names OUT and the system's reason, not a staging file. */
  @Test
  void aFailedWriteNamesTheOutputAndLeavesNothing() throws IOException {
    // a name the file system takes, but not with the staging folder's suffix
    Path out = dir.resolve("new").resolve("m".repeat(250));
    OutputException e = assertThrows(OutputException.class,
        () -> WeightsConverter.convert(CheckpointsTest.BIN, out,
            WeightsConverter.Options.defaults()));
    assertEquals(out + ": cannot write: File name too long", e.getMessage());
    assertEquals(out, e.file());
    assertEquals(List.of(), names(dir)); // the folder made for it removed again
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

  private static List<String> names(Path folder) throws IOException {
    try (Stream<Path> s = Files.list(folder)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private void assertNoTemporaries() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "temporaries");
    }
  }
}
