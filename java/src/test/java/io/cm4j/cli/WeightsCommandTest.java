package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static io.cm4j.cli.CliRun.runOffline;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.FloatTensor;
import io.cm4j.Golden;
import io.cm4j.cli.CliRun.Result;
import io.cm4j.weights.DType;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.SafetensorsWriter;
import io.cm4j.weights.TensorEntry;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code cm4j weights inspect|convert} in-process, and every checkpoint format through
 * {@code unet} and {@code generate}: golden outputs, exit codes, hostile files.
 */
class WeightsCommandTest {
  @TempDir Path tmp;

  private Result run(String... args) {
    return runOffline(tmp.resolve("env"), args);
  }

  private static Path tinyConfig() {
    return Golden.file("tiny/pipeline/unet/config.json");
  }

  /** Format, the weights, and extra arguments (the config an OpenAI file of this name needs). */
  static Stream<Arguments> tinyCopies() {
    Path unet = Golden.file("tiny/pipeline/unet");
    return Stream.of(
        Arguments.of("safetensors", unet.resolve("diffusion_pytorch_model.safetensors"),
            List.of()),
        Arguments.of("torch", unet.resolve("diffusion_pytorch_model.bin"), List.of()),
        Arguments.of("paddle", unet.resolve("model_state.pdparams"), List.of()),
        Arguments.of("openai", Golden.file("tiny/openai/tiny_cd_test.pt"),
            List.of("--config", tinyConfig().toString())));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("tinyCopies")
  void inspectReportsFormatCountAndKeys(String format, Path weights, List<String> extra) {
    Result r = run(args("weights", "inspect", weights.toString(), extra));
    assertEquals(0, r.exit(), r.err());
    System.out.print(r.out());
    assertTrue(r.out().contains("format:     " + format + "\n"), r.out());
    assertTrue(r.out().contains("tensors:    225\n"), r.out());
    assertTrue(r.out().contains("dtypes:     F32 x225\n"), r.out());
    assertTrue(r.out().contains("keys:       ok: no missing keys"), r.out());
    assertTrue(r.out().contains("config:     " + (extra.isEmpty()
        ? weights.getParent().resolve("config.json").toString() : tinyConfig().toString())),
        r.out());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("tinyCopies")
  void convertThenUnetMatchesTheGoldenOutput(String format, Path weights, List<String> extra)
      throws Exception {
    Path out = tmp.resolve("converted-" + format);
    Result r = run(args("weights", "convert", weights.toString(), out.toString(), extra));
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().startsWith("wrote " + out + ": 225 tensors"), r.out());
    assertTrue(Files.isRegularFile(out.resolve("unet/diffusion_pytorch_model.safetensors")));
    assertTrue(Files.isRegularFile(out.resolve("unet/config.json")));
    assertEquals(0, run("weights", "inspect", out.toString()).exit());
    assertUnetMatchesGolden("convert " + format, out.toString());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("tinyCopies")
  void unetTakesEveryFormatDirectly(String format, Path weights, List<String> extra)
      throws Exception {
    assertUnetMatchesGolden("unet --model " + format,
        args(weights.toString(), extra).toArray(String[]::new));
  }

  @Test
  void inspectOfAFolderAndOfAMismatchedConfigListsTheKeys() throws Exception {
    Result r = run("weights", "inspect", Golden.file("tiny/pipeline").toString());
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().contains("format:     safetensors"), r.out());

    // a weights file that does not fit its config: every problem listed, still exit 0
    Path unet = Files.createDirectories(tmp.resolve("unfit/unet"));
    Files.copy(tinyConfig(), unet.resolve("config.json"));
    try (SafetensorsFile src = SafetensorsFile.open(
        Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.safetensors"))) {
      SafetensorsWriter w = new SafetensorsWriter();
      for (String n : src.names()) {
        TensorEntry t = src.get(n);
        if (n.equals("conv_in.bias")) {
          continue; // missing
        }
        long[] shape = n.equals("conv_out.bias") ? new long[] {1, 3} : t.shape();
        w.add(n.equals("conv_in.weight") ? "conv_in.kernel" : n, t.dtype(), shape, t.data());
      }
      w.write(unet.resolve("diffusion_pytorch_model.safetensors"));
    }
    r = run("weights", "inspect", tmp.resolve("unfit").toString());
    assertEquals(0, r.exit(), r.err());
    System.out.print(r.out());
    assertTrue(r.out().contains("keys:       2 missing, 1 unexpected, 1 mis-shaped\n"), r.out());
    assertTrue(r.out().contains("      conv_in.bias\n"), r.out());
    assertTrue(r.out().contains("      conv_in.weight\n"), r.out());
    assertTrue(r.out().contains("      conv_in.kernel\n"), r.out());
    assertTrue(r.out().contains("conv_out.bias: expected [3], found [1, 3]"), r.out());
    // ...and convert says so on stderr, but writes the model
    r = run("weights", "convert", tmp.resolve("unfit").toString(),
        tmp.resolve("unfit-out").toString());
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.err().contains("warning: the weights do not fit"), r.err());

    // an OpenAI file of a published name is mapped with the shipped (ImageNet-64) config,
    // which the tiny weights do not fit
    Path pt = tmp.resolve("cd_imagenet64_l2.pt");
    Files.copy(Golden.file("tiny/openai/tiny_cd_test.pt"), pt);
    assertBadInput(run("weights", "inspect", pt.toString()), pt.toString(),
        "is the UNet config the one for this checkpoint?");
    assertEquals(0, run("weights", "inspect", pt.toString(), "--config",
        tinyConfig().toString()).exit());

    // no config anywhere: said, no key check
    Path bin = tmp.resolve("alone.bin");
    Files.copy(Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.bin"), bin);
    r = run("weights", "inspect", bin.toString());
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().contains("config:     none found"), r.out());
  }

  @Test
  void convertToFp16HalvesTheFileAndStillRuns() throws Exception {
    Path out = tmp.resolve("fp16");
    Result r = run("weights", "convert", "--dtype", "fp16",
        Golden.file("tiny/pipeline/unet/model_state.pdparams").toString(), out.toString());
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile st = SafetensorsFile.open(
        out.resolve("unet/diffusion_pytorch_model.safetensors"))) {
      assertEquals(225, st.names().size());
      for (String name : st.names()) {
        assertEquals(DType.F16, st.get(name).dtype(), name);
      }
    }
    assertTrue(run("weights", "inspect", out.toString()).out().contains("F16 x225"));
    Path output = tmp.resolve("fp16.safetensors");
    r = run("unet", "--model", out.toString(), "--inputs",
        Golden.file("tiny/unet_case.inputs.safetensors").toString(), "--output",
        output.toString());
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile got = SafetensorsFile.open(output);
        SafetensorsFile expected = SafetensorsFile.open(
            Golden.file("tiny/unet_case.expected.safetensors"))) {
      double err = Golden.error("fp16 weights", expected, "sample",
          FloatTensor.of(got.get("sample")));
      assertTrue(err < 1e-2, "fp16 weights: relative L2 error " + err);
    }
  }

  @Test
  void convertWithRandomWeightsWritesSynthV1() throws Exception {
    // the tiny golden weights are synth-v1 seed 1
    Path out = tmp.resolve("synth");
    Result r = run("weights", "convert", "--random-weights", "1", "--config",
        tinyConfig().toString(), out.toString());
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile got = SafetensorsFile.open(
            out.resolve("unet/diffusion_pytorch_model.safetensors"));
        SafetensorsFile stored = SafetensorsFile.open(
            Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.safetensors"))) {
      assertEquals(stored.names().stream().sorted().toList(),
          got.names().stream().sorted().toList());
      for (String name : stored.names()) {
        assertTrue(Arrays.equals(stored.floats(name), got.floats(name)), name);
      }
    }
    assertUnetMatchesGolden("convert --random-weights", out.toString());
  }

  @Test
  void convertUsageAndExistingOutput() throws Exception {
    Path out = Files.createDirectories(tmp.resolve("taken"));
    Files.writeString(out.resolve("keep.txt"), "mine");
    String in = Golden.file("tiny/pipeline").toString();
    assertBadInput(run("weights", "convert", in, out.toString()), out.toString(),
        "already exists");
    assertEquals("mine", Files.readString(out.resolve("keep.txt")));
    // --overwrite replaces only a model convert wrote: not the user's file
    assertBadInput(run("weights", "convert", "--overwrite", in, out.toString()),
        out + ": not replaced: it holds what convert does not write (keep.txt)");
    assertEquals("mine", Files.readString(out.resolve("keep.txt")));
    Files.delete(out.resolve("keep.txt"));
    assertEquals(0, run("weights", "convert", in, out.toString()).exit());
    assertEquals(0, run("weights", "convert", "--overwrite", in, out.toString()).exit());
    assertTrue(Files.isRegularFile(out.resolve("scheduler/scheduler_config.json")));

    assertBadInput(run("weights", "convert", in), "expected IN and OUT");
    assertBadInput(run("weights", "convert", "--random-weights", "1", in, out.toString()),
        "--random-weights needs --config");
    assertBadInput(run("weights", "convert", "--random-weights", "1", "--config",
        tinyConfig().toString(), in, out.toString()), "expected only OUT");
    assertBadInput(run("weights", "convert", "--dtype", "int8", in, out.toString()),
        "--dtype");
    assertBadInput(run("weights", "inspect", tmp.resolve("absent.bin").toString()),
        "absent.bin", "file not found");
    assertBadInput(run("weights"), "missing a command");
  }

  /** convert into the folder of its input, or one above it: refused, nothing deleted. */
  @Test
  void convertNeverReplacesItsInput() throws Exception {
    Path folder = Files.createDirectories(tmp.resolve("work/weights"));
    for (String name : List.of("config.json", "diffusion_pytorch_model.safetensors")) {
      Files.copy(Golden.file("tiny/pipeline/unet/" + name), folder.resolve(name));
    }
    Files.writeString(folder.resolve("notes.txt"), "precious");
    List<String> before = CliRun.list(folder);
    String weights = folder.resolve("diffusion_pytorch_model.safetensors").toString();
    assertBadInput(run("weights", "convert", weights, folder.toString(), "--overwrite"),
        folder + ": holds the input " + weights);
    assertBadInput(run("weights", "convert", folder.toString(),
        folder.getParent().toString(), "--overwrite"), folder.getParent() + ": holds the input");
    assertBadInput(run("weights", "convert", folder.toString(),
        folder.resolve("out").toString()), folder.resolve("out") + ": is inside the input");
    Path file = folder.resolve("notes.txt");
    assertBadInput(run("weights", "convert", weights, file.toString(), "--overwrite"),
        file + ": is a file, not a folder");
    assertEquals(before, CliRun.list(folder));
    assertEquals("precious", Files.readString(folder.resolve("notes.txt")));
    assertEquals(List.of("weights"), CliRun.list(folder.getParent()));
  }

  /** A write that fails is exit code 1 with OUT and the reason, no exception class name. */
  @Test
  void convertThatCannotWriteNamesTheOutput() throws Exception {
    // a name the file system takes, but not with the staging folder's suffix
    Path out = tmp.resolve("m".repeat(250));
    Result r = run("weights", "convert", Golden.file("tiny/pipeline").toString(), out.toString());
    assertEquals(1, r.exit(), r.err());
    assertEquals("cm4j weights convert: " + out + ": cannot write: File name too long\n",
        r.err());
    Path file = Files.writeString(tmp.resolve("file"), "");
    assertBadInput(run("weights", "convert", Golden.file("tiny/pipeline").toString(),
        file.resolve("model").toString()), file + " is not a folder");
  }

  /** inspect and convert read --config as generate does: strict JSON, UTF-8, errors exit 2. */
  @Test
  void configIsReadStrictly() throws Exception {
    byte[] json = Files.readAllBytes(tinyConfig());
    String weights = Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.safetensors")
        .toString();
    List<byte[]> bad = List.of(concat(json, " garbage".getBytes(StandardCharsets.UTF_8)),
        concat(json, "{}".getBytes(StandardCharsets.UTF_8)), concat(json, new byte[] {0}));
    for (int i = 0; i < bad.size(); i++) {
      Path config = Files.write(tmp.resolve("bad" + i + ".json"), bad.get(i));
      Result r = run("weights", "inspect", "--config", config.toString(), weights);
      assertBadInput(r, "--config " + config + ": invalid JSON at offset ",
          "after the JSON value");
      assertEquals("", r.out());
      assertBadInput(run("weights", "convert", "--config", config.toString(), weights,
          tmp.resolve("out").toString()), "--config " + config + ": invalid JSON");
    }
    Path latin1 = Files.write(tmp.resolve("latin1.json"),
        concat(new byte[] {(byte) 0xff}, json));
    assertBadInput(run("weights", "inspect", "--config", latin1.toString(), weights),
        "--config " + latin1 + ": not valid UTF-8");
    assertBadInput(run("weights", "convert", "--config", latin1.toString(), weights,
        tmp.resolve("out").toString()), latin1 + ": not valid UTF-8");
    // an OpenAI file is mapped with the config before it is inspected: same message
    assertBadInput(run("weights", "inspect", "--config", latin1.toString(),
        Golden.file("tiny/openai/tiny_cd_test.pt").toString()), latin1 + ": not valid UTF-8");
    assertFalse(Files.exists(tmp.resolve("out")));
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] all = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }

  /** A pickle whose global is os.system: refused by every command, nothing runs. */
  @Test
  void hostilePickleIsRefusedAndNothingRuns() throws Exception {
    Path marker = tmp.resolve("marker-os-system");
    Path evil = tmp.resolve("evil.pdparams");
    Files.write(evil, reducePickle("os", "system", "touch " + marker));
    Path output = tmp.resolve("o.safetensors");
    List<Result> runs = List.of(
        run("weights", "inspect", evil.toString()),
        run("weights", "convert", evil.toString(), tmp.resolve("out").toString()),
        run("unet", "--model", evil.toString(), "--inputs",
            Golden.file("tiny/unet_case.inputs.safetensors").toString(),
            "--output", output.toString()),
        run("generate", "--model", evil.toString(), "--device", "cpu", "--out",
            tmp.resolve("x.png").toString()));
    for (Result r : runs) {
      assertBadInput(r, evil.toString(), "global 'os.system' is not allowed");
    }
    assertFalse(Files.exists(marker), "the marker file was created");
    assertFalse(Files.exists(tmp.resolve("out")));
    assertFalse(Files.exists(output));

    Path marker2 = tmp.resolve("marker-eval");
    Path evil2 = tmp.resolve("evil.bin");
    Files.write(evil2, reducePickle("builtins", "eval",
        "open('" + marker2 + "', 'w').write('pwned')"));
    assertBadInput(run("weights", "inspect", evil2.toString()), evil2.toString(),
        "global 'builtins.eval' is not allowed");
    assertFalse(Files.exists(marker2), "the marker file was created");
  }

  @Test
  void truncatedCheckpointIsBadInput() throws Exception {
    Path bin = tmp.resolve("unet/diffusion_pytorch_model.bin");
    Files.createDirectories(bin.getParent());
    byte[] all = Files.readAllBytes(Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.bin"));
    Files.write(bin, Arrays.copyOf(all, all.length / 2));
    Files.copy(tinyConfig(), bin.resolveSibling("config.json"));
    Result r = run("weights", "inspect", bin.toString());
    assertBadInput(r, bin.toString());
    assertBadInput(run("unet", "--model", tmp.resolve("unet").toString(), "--inputs",
        Golden.file("tiny/unet_case.inputs.safetensors").toString(),
        "--output", tmp.resolve("o.safetensors").toString()), "--model", bin.toString());
  }

  /** generate on a pipeline folder whose UNet weights are only a torch .bin: diffusers' images. */
  @Test
  void generateWithAFolderHoldingOnlyABin() throws Exception {
    Path model = tmp.resolve("model");
    Path golden = Golden.file("tiny/pipeline");
    Files.createDirectories(model.resolve("unet"));
    Files.createDirectories(model.resolve("scheduler"));
    for (String f : List.of("model_index.json", "scheduler/scheduler_config.json",
        "unet/config.json", "unet/diffusion_pytorch_model.bin")) {
      Files.copy(golden.resolve(f), model.resolve(f));
    }
    Path tensor = tmp.resolve("image.safetensors");
    Result r = run("generate", "--model", model.toString(), "--device", "cpu", "--seed", "12",
        "--class", "145,7", "--out-tensor", tensor.toString());
    assertEquals(0, r.exit(), r.err());
    assertImageMatchesOnestep(tensor, "generate --model <folder with .bin>");

    // an OpenAI .pt with --config, and a weights file whose folder has no scheduler: defaults,
    // which for the tiny pipeline are its own scheduler's values
    Path tensor2 = tmp.resolve("image2.safetensors");
    r = run("generate", "--model", Golden.file("tiny/openai/tiny_cd_test.pt").toString(),
        "--config", tinyConfig().toString(), "--device", "cpu", "--seed", "12",
        "--class", "145,7", "--out-tensor", tensor2.toString());
    assertEquals(0, r.exit(), r.err());
    assertImageMatchesOnestep(tensor2, "generate --model tiny_cd_test.pt --config");
  }

  // --- helpers ---

  private static String[] args(String a, String b, String c, List<String> extra) {
    List<String> all = new ArrayList<>(List.of(a, b, c));
    all.addAll(extra);
    return all.toArray(String[]::new);
  }

  private static String[] args(String a, String b, String c, String d, List<String> extra) {
    List<String> all = new ArrayList<>(List.of(a, b, c, d));
    all.addAll(extra);
    return all.toArray(String[]::new);
  }

  private static List<String> args(String first, List<String> extra) {
    List<String> all = new ArrayList<>(List.of(first));
    all.addAll(extra);
    return all;
  }

  /** {@code unet --model MODEL... } on the tiny case; the output within the CPU bound. */
  private void assertUnetMatchesGolden(String what, String... modelArgs) throws Exception {
    Path output = tmp.resolve("unet-out.safetensors");
    List<String> all = new ArrayList<>(List.of("unet", "--model"));
    all.addAll(List.of(modelArgs));
    all.addAll(List.of("--inputs", Golden.file("tiny/unet_case.inputs.safetensors").toString(),
        "--output", output.toString()));
    Result r = run(all.toArray(String[]::new));
    assertEquals(0, r.exit(), r.err());
    try (SafetensorsFile got = SafetensorsFile.open(output);
        SafetensorsFile expected = SafetensorsFile.open(
            Golden.file("tiny/unet_case.expected.safetensors"))) {
      Golden.assertClose(what, expected, "sample", FloatTensor.of(got.get("sample")),
          Golden.CPU_FP32_TOLERANCE);
    }
    Files.delete(output);
  }

  private static void assertImageMatchesOnestep(Path tensor, String what) throws Exception {
    try (SafetensorsFile got = SafetensorsFile.open(tensor);
        SafetensorsFile golden = SafetensorsFile.open(
            Golden.file("tiny/pipeline_cases/onestep.safetensors"))) {
      float[] a = got.floats("image");
      float[] b = golden.floats("image");
      assertEquals(b.length, a.length);
      double max = 0;
      for (int i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i] - b[i]));
      }
      System.out.printf("%s: image max abs error %.3e%n", what, max);
      assertTrue(max <= 1e-4, what + ": image max abs error " + max);
    }
  }

  /**
   * pickle.dumps of an object whose {@code __reduce__} is {@code (module.name, (arg,))},
   * protocol 2: PROTO 2, GLOBAL, BINUNICODE, TUPLE1, REDUCE, STOP.
   */
  static byte[] reducePickle(String module, String name, String arg) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.write(0x80);
    b.write(2);
    b.write('c');
    b.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
    byte[] s = arg.getBytes(StandardCharsets.UTF_8);
    b.write('X');
    b.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(s.length).array());
    b.writeBytes(s);
    b.write(0x85);
    b.write('R');
    b.write('.');
    return b.toByteArray();
  }
}
