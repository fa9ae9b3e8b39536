package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static io.cm4j.cli.CliRun.list;
import static io.cm4j.cli.CliRun.runOffline;
import static io.cm4j.cli.TensorDiff.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Golden;
import io.cm4j.cli.CliRun.Result;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.ImageOutput;
import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.SafetensorsWriter;
import io.cm4j.weights.TestData;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code cm4j generate} in-process on the tiny pipeline: golden images, files, bad input. */
class GenerateCommandTest {
  @TempDir Path tmp;

  private static String tiny() {
    return Golden.file("tiny/pipeline").toString();
  }

  /** {@code generate --model tiny ...}, offline with an empty cache. */
  private Result generate(String... args) {
    List<String> all = new ArrayList<>(List.of("--model", tiny()));
    all.addAll(List.of(args));
    return generateWith(all.toArray(String[]::new));
  }

  /** {@code generate ...}, offline with an empty cache under tmp/env. */
  private Result generateWith(String... args) {
    List<String> all = new ArrayList<>(List.of("generate"));
    all.addAll(List.of(args));
    return runOffline(tmp.resolve("env"), all.toArray(String[]::new));
  }

  @Test
  void class145Seed12WritesAValidPng() throws Exception {
    Path png = tmp.resolve("x.png");
    Result r = generate("--class", "145", "--seed", "12", "--out", png.toString());
    assertEquals(0, r.exit(), r.err());
    assertEquals("wrote " + png, r.out().strip());
    assertTrue(r.err().contains("running on cpu") || r.err().contains("running on cuda"),
        "says which device: " + r.err());
    assertTrue(r.err().contains("class 145 (king penguin), 1 step, seed 12"), r.err());
    BufferedImage image = ImageIO.read(png.toFile());
    assertEquals(32, image.getWidth());
    assertEquals(32, image.getHeight());
  }

  @Test
  void aClassGivenByItsImageNetNameIsThatLabel() throws Exception {
    Path byName = tmp.resolve("name.png");
    Path byLabel = tmp.resolve("label.png");
    Result r = generate("--class", "Goldfish", "--seed", "3", "--out", byName.toString());
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.err().contains("class 1 (goldfish)"), r.err());
    assertEquals(0, generate("--class", "1", "--seed", "3", "--out", byLabel.toString()).exit());
    assertArrayEquals(Files.readAllBytes(byLabel), Files.readAllBytes(byName));
    assertBadInput(generate("--class", "goldfsh", "--out", png()), "--class", "\"goldfsh\"",
        "not an ImageNet class name");
    assertBadInput(generate("--class", "CARDIGAN", "--out", png()), "\"Cardigan\" (264)",
        "\"cardigan\" (474)");
  }

  @Test
  void class145Seed12OnTheCpuIsDiffusersFirstOnestepImage() throws Exception {
    // batch 1 draws the first half of the batch-2 latents (3072 is a multiple of 16)
    Path png = tmp.resolve("x.png");
    Result r = generate("--class", "145", "--seed", "12", "--device", "cpu", "--out",
        png.toString());
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile golden = SafetensorsFile.open(
        Golden.file("tiny/pipeline_cases/onestep.safetensors"))) {
      long[] expected = golden.longs("image_uint8"); // [2, 32, 32, 3]; image 0 is class 145
      assertTrue(maxPixelDiff(png, expected, 0) <= 1);
    }
  }

  static Stream<Path> pipelineCases() throws IOException {
    try (Stream<Path> s = Files.list(Golden.file("tiny/pipeline_cases"))) {
      return s.sorted().toList().stream();
    }
  }

  /** Each golden call through the CLI: --out-tensor within 1e-4, every PNG within 1 level. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("pipelineCases")
  void goldenCallsThroughTheCli(Path file) throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(file)) {
      Map<String, Object> call = Json.parseObject(golden.metadata().get("call"));
      List<String> args = new ArrayList<>(List.of("--device", "cpu",
          "--seed", call.get("generator_seed").toString(),
          "--batch", call.get("batch_size").toString(),
          "--class", call.get("class_labels").toString().replaceAll("[\\[\\] ]", ""),
          "--out", tmp.resolve("images").toString(),
          "--out-tensor", tmp.resolve("image.safetensors").toString()));
      if (call.get("timesteps") instanceof List<?> ts) {
        args.addAll(List.of("--timesteps",
            ts.stream().map(Object::toString).collect(Collectors.joining(","))));
      } else {
        args.addAll(List.of("--steps", call.get("num_inference_steps").toString()));
      }
      Result r = generate(args.toArray(String[]::new));
      assertEquals(0, r.exit(), r.err());
      try (SafetensorsFile got = SafetensorsFile.open(tmp.resolve("image.safetensors"))) {
        assertEquals(List.of("image"), got.names());
        float[] image = got.floats("image");
        double err = maxAbsDiff(golden.floats("image"), image);
        System.out.printf("cli pipeline case %s: image max abs error %.3e%n", file.getFileName(),
            err);
        assertTrue(err <= 1e-4, "image max abs error " + err);
      }
      long[] expected = golden.longs("image_uint8");
      int batch = ((Number) call.get("batch_size")).intValue();
      for (int b = 0; b < batch; b++) {
        Path png = tmp.resolve("images").resolve(String.format("%04d.png", b));
        assertTrue(maxPixelDiff(png, expected, b) <= 1, png.toString());
      }
    }
  }

  @Test
  void aWeightsFileFindsItsPipelinesScheduler() throws Exception {
    Path fromDir = tmp.resolve("dir.png");
    Path fromFile = tmp.resolve("file.png");
    assertEquals(0, generate("--class", "3", "--steps", "2", "--out", fromDir.toString()).exit());
    Result r = generateWith("--model", Golden.file(
        "tiny/pipeline/unet/diffusion_pytorch_model.safetensors").toString(), "--class", "3",
        "--steps", "2", "--out", fromFile.toString());
    assertEquals(0, r.exit(), r.err());
    assertTrue(!r.err().contains("defaults"), r.err());
    assertArrayEquals(Files.readAllBytes(fromDir), Files.readAllBytes(fromFile));
  }

  @Test
  void batchesNameTheirFiles() throws Exception {
    Result r = generate("--class", "1", "--batch", "2", "--out", tmp.resolve("x.png").toString());
    assertEquals(0, r.exit(), r.err());
    assertEquals(List.of("x-0.png", "x-1.png"), written());
    r = generate("--class", "1,2,3", "--out", tmp.resolve("new").toString());
    assertEquals(0, r.exit(), r.err());
    assertEquals(List.of("0000.png", "0001.png", "0002.png"), list(tmp.resolve("new")));
  }

  @Test
  void withoutClassTheLabelsComeFromTheSeed() throws Exception {
    Result r = generate("--batch", "2", "--seed", "5", "--out-tensor",
        tmp.resolve("t.safetensors").toString());
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.err().contains("(drawn from the seed)"), r.err());
    assertEquals(List.of("t.safetensors"), written(), "only the tensor was asked for");
    try (SafetensorsFile got = SafetensorsFile.open(tmp.resolve("t.safetensors"))) {
      long[] labels = ConsistencyModelPipeline.randomClassLabels(5, 2, 1000);
      assertEquals(labels[0] + "," + labels[1], got.metadata().get("cm4j.class_labels"));
    }
  }

  @Test
  void timestepsOutOfOrder() throws Exception {
    assertBadInput(generate("--timesteps", "0,22", "--out", png()), "--timesteps 0,22",
        "descending");
    assertNothingWritten();
  }

  @Test
  void timestepsPastTraining() throws Exception {
    assertBadInput(generate("--timesteps", "40,0", "--out", png()), "--timesteps 40,0",
        "train_timesteps`: 40");
    assertBadInput(generate("--steps", "41", "--out", png()), "--steps 41", "40");
    assertNothingWritten();
  }

  @Test
  void negativeTimesteps() throws Exception {
    assertBadInput(generate("--timesteps", "5,-100", "--out", png()), "--timesteps 5,-100",
        "negative");
    assertNothingWritten();
  }

  @Test
  void batchesPastWhatTheModelTakes() throws Exception {
    // Refused before a file name is made or a label drawn for every image.
    assertBadInput(generate("--batch", "100000000", "--out", png()), "--batch 100000000",
        "at most 65536");
    assertBadInput(generate("--batch", "21846", "--out", png()), "--batch 21846",
        "at most 21845 in one call of this model");
    assertBadInput(generate("--class", ",,", "--out", png()), "--class", "at least one label");
    assertNothingWritten();
  }

  @Test
  void weightsHoldingNanAreNamedNotEncoded() throws Exception {
    // The tiny pipeline with conv_out's bias NaN: every image is NaN, which used to end as a
    // PNG encoder's exception (exit 1), or silently in a tensor file (exit 0).
    Path model = tmp.resolve("nan");
    Path unet = Files.createDirectories(model.resolve("unet"));
    Path tiny = Golden.file("tiny/pipeline");
    Files.copy(tiny.resolve("model_index.json"), model.resolve("model_index.json"));
    Files.createDirectories(model.resolve("scheduler"));
    Files.copy(tiny.resolve("scheduler/scheduler_config.json"),
        model.resolve("scheduler/scheduler_config.json"));
    Files.copy(tiny.resolve("unet/config.json"), unet.resolve("config.json"));
    SafetensorsWriter w = new SafetensorsWriter();
    try (SafetensorsFile f =
        SafetensorsFile.open(tiny.resolve("unet/diffusion_pytorch_model.safetensors"))) {
      for (String name : f.names()) {
        float[] values = f.floats(name);
        if (name.equals("conv_out.bias")) {
          values[0] = Float.NaN;
        }
        w.addFloats(name, f.get(name).shape(), values);
      }
    }
    w.write(unet.resolve("diffusion_pytorch_model.safetensors"));
    Path tensor = tmp.resolve("t.safetensors");
    assertBadInput(generateWith("--model", model.toString(), "--class", "1", "--out", png(),
        "--out-tensor", tensor.toString()), "--model " + model, "image 0 holds NaN");
    assertTrue(Files.notExists(tensor) && Files.notExists(Path.of(png())));
  }

  @Test
  void bothStepsAndTimesteps() throws Exception {
    assertBadInput(generate("--steps", "2", "--timesteps", "22,0", "--out", png()),
        "--steps", "--timesteps", "mutually exclusive");
    assertNothingWritten();
  }

  @Test
  void labelPastTheClasses() throws Exception {
    assertBadInput(generate("--class", "1000", "--out", png()), "--class 1000", "[0, 1000)");
    assertBadInput(generate("--class", "1,2", "--batch", "3", "--out", png()), "--class",
        "--batch 3");
    assertNothingWritten();
  }

  @Test
  void unwritableOutputs() throws Exception {
    assertBadInput(generate("--out", tmp.resolve("no/such/x.png").toString()), "--out",
        "does not exist");
    Files.writeString(tmp.resolve("file"), "x");
    assertBadInput(generate("--out", tmp.resolve("file/x.png").toString()), "--out",
        "does not exist");
    assertBadInput(generate("--out", tmp.resolve("x.jpg").toString()), "--out", ".png");
    assertBadInput(generate("--out-tensor", tmp.toString()), "--out-tensor", "is a folder");
    assertBadInput(generate("--out", png(), "--out-tensor", png()), "--out-tensor " + png(),
        "is also a PNG of --out");
    Files.delete(tmp.resolve("file"));
    assertNothingWritten();
  }

  @Test
  void outputsThatAreNotRegularFilesAreRefusedBeforeAnythingRuns() throws Exception {
    Path fifo = TestData.mkfifo(tmp.resolve("f.safetensors"));
    assertBadInput(generate("--out", png(), "--out-tensor", fifo.toString()),
        "--out-tensor " + fifo + ": not a regular file");
    Path dir = Files.createDirectory(tmp.resolve("dir"));
    TestData.mkfifo(dir.resolve("0001.png"));
    assertBadInput(generate("--class", "1,2", "--out", dir.toString()),
        "--out " + dir.resolve("0001.png") + ": not a regular file");
    Path dangling = Files.createSymbolicLink(tmp.resolve("link.png"), Path.of("missing.png"));
    assertBadInput(generate("--out", dangling.toString()),
        "--out " + dangling + ": is a symbolic link to missing.png, which does not exist");
    assertTrue(TestData.isOther(fifo), "the FIFO stays a FIFO");
    assertEquals(List.of("0001.png"), list(dir));
    assertEquals(List.of("dir", "f.safetensors", "link.png"), written());
  }

  @Test
  void aLinkGivenAsOutIsWrittenThroughAndFilesGetUsualPermissions() throws Exception {
    Path sub = Files.createDirectory(tmp.resolve("sub"));
    Path real = Files.writeString(sub.resolve("real.png"), "old");
    Set<PosixFilePermission> groupRead = PosixFilePermissions.fromString("rw-r-----");
    Set<PosixFilePermission> plain = TestData.plainCreatePermissions(tmp);
    Files.setPosixFilePermissions(real, groupRead);
    Path png = Files.createSymbolicLink(tmp.resolve("x.png"), Path.of("sub/real.png"));
    Path tensor = tmp.resolve("x.safetensors");
    Result r = generate("--class", "1", "--out", png.toString(), "--out-tensor",
        tensor.toString());
    assertEquals(0, r.exit(), r.err());
    assertEquals("wrote " + png + "\nwrote " + tensor, r.out().strip());
    assertTrue(Files.isSymbolicLink(png), "the link stays a link");
    assertEquals(32, ImageIO.read(real.toFile()).getWidth());
    assertEquals(groupRead, Files.getPosixFilePermissions(real), "the replaced file's");
    assertEquals(plain, Files.getPosixFilePermissions(tensor),
        "a new file gets a plain create's (0666 less the umask), not owner-only");
    assertEquals(List.of("real.png"), list(sub));
    assertEquals(List.of("sub", "x.png", "x.safetensors"), written());
  }

  @Test
  void aModelIdOfflineWithAnEmptyCache() throws Exception {
    assertBadInput(generateWith("--model", "org/model", "--out", png()), "org/model", "offline",
        "HF_HUB_OFFLINE");
    assertBadInput(generateWith("--out", png()), "openai/diffusers-cd_imagenet64_l2", "offline");
    assertNothingWritten();
  }

  @Test
  void neitherAPathNorAnId() throws Exception {
    assertBadInput(generateWith("--model", tmp.resolve("nope").toString(), "--out", png()),
        "nope", "no such file or directory");
    assertNothingWritten();
  }

  private String png() {
    return tmp.resolve("out.png").toString();
  }

  /** What the runs left in tmp, besides the environment's folder. */
  private List<String> written() throws IOException {
    return list(tmp).stream().filter(n -> !n.equals("env")).toList();
  }

  private void assertNothingWritten() throws IOException {
    assertEquals(List.of(), written(), "no file, partial or complete");
  }

  /** Largest difference between a PNG and image {@code index} of golden uint8 [B, H, W, 3]. */
  private static int maxPixelDiff(Path png, long[] expected, int index) throws IOException {
    Raster raster = ImageIO.read(png.toFile()).getRaster();
    int w = raster.getWidth();
    int h = raster.getHeight();
    int[] rgb = raster.getPixels(0, 0, w, h, (int[]) null); // [H, W, 3], R G B
    int base = index * h * w * 3;
    int max = 0;
    for (int i = 0; i < rgb.length; i++) {
      max = Math.max(max, Math.abs(rgb[i] - (int) expected[base + i]));
    }
    return max;
  }

  @Test
  void pngPixelsAreTheTensorsRounded() throws Exception {
    Result r = generate("--class", "7", "--steps", "2", "--out", png(), "--out-tensor",
        tmp.resolve("t.safetensors").toString());
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile got = SafetensorsFile.open(tmp.resolve("t.safetensors"))) {
      byte[] bytes = ImageOutput.toUint8(got.floats("image"));
      long[] asLongs = new long[bytes.length];
      for (int i = 0; i < bytes.length; i++) {
        asLongs[i] = bytes[i] & 0xff;
      }
      assertEquals(0, maxPixelDiff(tmp.resolve("out.png"), asLongs, 0));
    }
  }
}
