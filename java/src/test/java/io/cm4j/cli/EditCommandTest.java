package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static io.cm4j.cli.CliRun.list;
import static io.cm4j.cli.CliRun.runOffline;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Golden;
import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.SafetensorsWriter;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code cm4j edit}: every golden editing case through the CLI with --inputs and with the PNG
 * inputs (CPU, float32: out within 1e-4 relative L2, no 8-bit pixel off by more than 1), and
 * bad input: exit 2, a message naming the argument, nothing written.
 */
class EditCommandTest {
  @TempDir Path tmp;

  private static String tiny() {
    return Golden.file("tiny/pipeline").toString();
  }

  private CliRun.Result edit(String... args) {
    List<String> all = new ArrayList<>(List.of("edit"));
    all.addAll(List.of(args));
    all.addAll(List.of("--device", "cpu"));
    if (!all.contains("--model") && !all.contains("--config")) {
      all.addAll(List.of("--model", tiny()));
    }
    return runOffline(tmp.resolve("env"), all.toArray(String[]::new));
  }

  private static Path golden(String task, String suffix) {
    return Golden.file("editing/tiny_" + task + suffix);
  }

  /** out of --out-tensor and the PNGs of --out DIR against the golden case. */
  private static void assertGolden(String task, Path tensor, Path pngDir) throws Exception {
    try (SafetensorsFile expected = SafetensorsFile.open(golden(task, ".expected.safetensors"));
        SafetensorsFile got = SafetensorsFile.open(tensor)) {
      float[] out = got.floats("out");
      double err = Golden.relativeL2(out, expected.floats("out"));
      System.out.printf("cli %s out: relative L2 error %.3e%n", task, err);
      assertTrue(err <= Golden.CPU_FP32_TOLERANCE, task + ": out error " + err);
      assertEquals(Arrays.toString(expected.get("uint8").shape()),
          Arrays.toString(got.get("image").shape()));
      ByteBuffer u = expected.get("uint8").data();
      long[] s = expected.get("uint8").shape(); // [B, H, W, 3]
      int worst = 0;
      for (int b = 0; b < s[0]; b++) {
        Raster png = ImageIO.read(pngDir.resolve(String.format("%04d.png", b)).toFile())
            .getRaster();
        for (int y = 0; y < s[1]; y++) {
          for (int x = 0; x < s[2]; x++) {
            for (int c = 0; c < 3; c++) {
              int want = u.get((int) (((b * s[1] + y) * s[2] + x) * 3 + c)) & 0xff;
              worst = Math.max(worst, Math.abs(png.getSample(x, y, c) - want));
            }
          }
        }
      }
      assertTrue(worst <= 1, task + ": a PNG pixel is off by " + worst);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"inpaint", "colorize", "superres", "sdedit", "denoise", "interpolate"})
  void everyGoldenCaseFromItsTensors(String task) throws Exception {
    Path out = tmp.resolve("out");
    Path tensor = tmp.resolve("out.safetensors");
    CliRun.Result r = edit(task, "--inputs", golden(task, ".inputs.safetensors").toString(),
        "--out", out.toString(), "--out-tensor", tensor.toString());
    assertEquals(0, r.exit(), r.err());
    assertGolden(task, tensor, out);
  }

  /** The case's PNGs and the rest of its inputs as options. */
  @ParameterizedTest
  @ValueSource(strings = {"inpaint", "colorize", "superres", "sdedit", "denoise", "interpolate"})
  void everyGoldenCaseFromItsPngs(String task) throws Exception {
    List<String> args = new ArrayList<>(List.of(task));
    try (SafetensorsFile in = SafetensorsFile.open(golden(task, ".inputs.safetensors"))) {
      args.addAll(List.of("--seed", Long.toString(in.longs("seed")[0]), "--class",
          join(in.longs("class_labels"))));
      if (in.contains("timesteps")) {
        args.addAll(List.of("--timesteps", join(in.longs("timesteps"))));
      }
      if (in.contains("sigma")) {
        args.addAll(List.of("--sigma", Float.toString(in.floats("sigma")[0])));
      }
      if (in.contains("image")) {
        int batch = (int) in.get("image").shape()[0];
        args.addAll(List.of("--image", pngs(task, "image", batch)));
        if (task.equals("inpaint")) {
          args.addAll(List.of("--mask", pngs(task, "mask", batch)));
        }
      } else {
        args.addAll(List.of("--alphas", "0,0.25,0.5,0.75,1"));
      }
    }
    Path out = tmp.resolve("png-out");
    Path tensor = tmp.resolve("png-out.safetensors");
    args.addAll(List.of("--out", out.toString(), "--out-tensor", tensor.toString()));
    CliRun.Result r = edit(args.toArray(String[]::new));
    assertEquals(0, r.exit(), r.err());
    assertGolden(task, tensor, out);
  }

  @Test
  void superresFromLowResolutionPngs() throws Exception {
    Path tensor = tmp.resolve("low.safetensors");
    CliRun.Result r = edit("superres", "--image", pngs("superres", "lowres", 3), "--seed",
        "1003", "--class", "1,500,963", "--timesteps", "30,20,10,0", "--out-tensor",
        tensor.toString());
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile expected = SafetensorsFile.open(
        golden("superres", ".expected.safetensors"));
        SafetensorsFile got = SafetensorsFile.open(tensor)) {
      // lowres_NN.png holds the 4x4 patch means rounded to 8 bits: the reference moves by up to
      // 0.5/127.5, so out is close to the golden case but not within its float bound
      double err = Golden.relativeL2(got.floats("out"), expected.floats("out"));
      System.out.printf("cli superres from lowres PNGs: out relative L2 error %.3e%n", err);
      assertTrue(err <= 2e-2, "out error " + err);
    }
  }

  private static String pngs(String task, String prefix, int count) {
    return java.util.stream.IntStream.range(0, count)
        .mapToObj(i -> golden(task, String.format("/%s_%02d.png", prefix, i)).toString())
        .collect(Collectors.joining(","));
  }

  private static String join(long[] values) {
    return Arrays.stream(values).mapToObj(Long::toString).collect(Collectors.joining(","));
  }

  private Path outDir() {
    return tmp.resolve("bad-out");
  }

  /** exit 2 naming {@code parts}, and neither the --out folder nor the tensor exists. */
  private void assertRefused(CliRun.Result r, String... parts) throws Exception {
    assertBadInput(r, parts);
    assertTrue(!Files.exists(outDir()), "--out was written: " + list(tmp));
    assertTrue(!Files.exists(tmp.resolve("bad.safetensors")), "--out-tensor was written");
    for (String name : list(tmp)) {
      assertTrue(!name.startsWith("."), "left behind: " + name);
    }
  }

  private CliRun.Result badEdit(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--out", outDir().toString(), "--out-tensor",
        tmp.resolve("bad.safetensors").toString()));
    return edit(all.toArray(String[]::new));
  }

  private Path png(String name, int width, int height, int value) throws Exception {
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        image.getRaster().setSample(x, y, 0, value);
      }
    }
    Path file = tmp.resolve("in").resolve(name);
    Files.createDirectories(file.getParent());
    ImageIO.write(image, "png", file.toFile());
    return file;
  }

  @Test
  void anImageOfAnotherSize() throws Exception {
    Path big = png("big.png", 64, 48, 100);
    assertRefused(badEdit("sdedit", "--image", big.toString()), "--image", "big.png",
        "expected a 32x32 image", "--resize");
  }

  @Test
  void aMaskOfAnotherSizeOrNone() throws Exception {
    Path image = png("image.png", 32, 32, 100);
    Path mask = png("mask.png", 16, 16, 255);
    assertRefused(badEdit("inpaint", "--image", image.toString(), "--mask", mask.toString()),
        "--mask", "mask.png", "expected a 32x32 mask");
    assertRefused(badEdit("inpaint", "--image", image.toString()), "--mask", "needs one mask");
    Path gray = png("gray.png", 32, 32, 128);
    assertRefused(badEdit("inpaint", "--image", image.toString(), "--mask", gray.toString()),
        "--mask", "binary mask");
  }

  @Test
  void aFileThatIsNotAPng() throws Exception {
    Path text = Files.writeString(tmp.resolve("notes.png"), "hello");
    assertRefused(badEdit("colorize", "--image", text.toString()), "--image", "notes.png",
        "not a PNG");
    assertRefused(badEdit("colorize", "--image", tmp.resolve("missing.png").toString()),
        "--image", "missing.png", "no such file");
  }

  @Test
  void sigmaAlphasAndTimestepsOutOfRange() throws Exception {
    Path image = png("image.png", 32, 32, 100);
    CliRun.Result sigma = badEdit("denoise", "--image", image.toString(), "--sigma", "100");
    assertRefused(sigma, "--sigma: expected", "[0.002, 80.0]", "100.0");
    assertTrue(!sigma.err().contains("sigma: sigma"), "the name told twice: " + sigma.err());
    assertRefused(badEdit("denoise", "--image", image.toString()), "--sigma", "needs");
    assertRefused(badEdit("interpolate", "--alphas", "0,1.5"), "--alphas", "[0, 1]", "1.5");
    assertRefused(badEdit("interpolate", "--alphas", "-0.1"), "--alphas", "-0.1");
    assertRefused(badEdit("sdedit", "--image", image.toString(), "--timesteps", "16,20"),
        "--timesteps", "descending");
    assertRefused(badEdit("recolor", "--image", image.toString()), "TASK", "recolor");
  }

  /** A value from the --inputs file is told as that file's, with the argument's name. */
  @Test
  void aLatentFromTheInputsFileNamesTheFile() throws Exception {
    Path inputs = tmp.resolve("sdedit+z.safetensors");
    float[] z = new float[3 * 32 * 32];
    new SafetensorsWriter()
        .addFloats("image", new long[] {1, 3, 32, 32}, new float[3 * 32 * 32])
        .addFloats("z1", new long[] {1, 3, 32, 32}, z)
        .addFloats("z2", new long[] {1, 3, 32, 32}, z).write(inputs);
    assertRefused(badEdit("sdedit", "--inputs", inputs.toString()),
        "--inputs " + inputs + ": latents: only interpolate takes it");
  }

  @Test
  void anUnconditionalModelGivenAClass() throws Exception {
    Map<String, Object> config = Json.parseObject(Files.readString(
        Golden.file("tiny/pipeline/unet/config.json")));
    config.put("num_class_embeds", null);
    Path file = Files.writeString(tmp.resolve("unconditional.json"), Json.write(config));
    Path image = png("image.png", 32, 32, 100);
    assertRefused(badEdit("sdedit", "--config", file.toString(), "--random-weights", "1",
        "--image", image.toString(), "--class", "3"), "--class", "unconditional");
    // without --class it runs
    CliRun.Result ok = edit("sdedit", "--config", file.toString(), "--random-weights", "1",
        "--image", image.toString(), "--out-tensor", tmp.resolve("u.safetensors").toString());
    assertEquals(0, ok.exit(), ok.err());
  }

  /** --class takes ImageNet names, as generate's does. */
  @Test
  void aClassGivenByItsImageNetName() throws Exception {
    Path image = png("image.png", 32, 32, 100);
    CliRun.Result ok = edit("sdedit", "--image", image.toString(), "--class", "goldfish",
        "--out-tensor", tmp.resolve("g.safetensors").toString());
    assertEquals(0, ok.exit(), ok.err());
    assertTrue(ok.err().contains(" class 1,") || ok.err().contains(" class 1 "), ok.err());
  }

  @Test
  void aBadInputsFile() throws Exception {
    Path junk = Files.writeString(tmp.resolve("case.safetensors"), "not safetensors");
    assertRefused(badEdit("inpaint", "--inputs", junk.toString()), "--inputs",
        "case.safetensors");
    assertRefused(badEdit("inpaint", "--inputs",
        golden("colorize", ".inputs.safetensors").toString()), "--inputs", "mask");
  }
}
