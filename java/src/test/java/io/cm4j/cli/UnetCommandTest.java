package io.cm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.FloatTensor;
import io.cm4j.Golden;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.SafetensorsWriter;
import io.cm4j.weights.TensorEntry;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cm4j unet} run in-process: exit codes, one-line messages, and a golden run. */
class UnetCommandTest {
  @TempDir Path dir;

  record Result(int exit, String out, String err) {}

  static Result run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = Main.commandLine(new PrintWriter(out), new PrintWriter(err)).execute(args);
    return new Result(exit, out.toString(), err.toString());
  }

  /**
   * Exit code 2 and a one-line message naming each of {@code parts} (usage errors add a second
   * line pointing to --help), no stack trace.
   */
  static void assertBadInput(Result r, String... parts) {
    assertEquals(2, r.exit, "exit code; stderr: " + r.err);
    String[] lines = r.err.strip().split("\n");
    for (String part : parts) {
      assertTrue(lines[0].contains(part), "expected '" + part + "' in: " + r.err);
    }
    assertTrue(lines.length == 1 || (lines.length == 2 && lines[1].startsWith("Try '")),
        "expected one line, found: " + r.err);
  }

  @Test
  void imagenet64WithRandomWeightsMatchesTheGoldenOutput() throws Exception {
    Path out = dir.resolve("out.safetensors");
    Result r = run("unet", "--config", Golden.file("imagenet64/config.json").toString(),
        "--random-weights", "1",
        "--inputs", Golden.file("imagenet64/unet_case.inputs.safetensors").toString(),
        "--output", out.toString());
    assertEquals(0, r.exit, r.err);
    assertTrue(r.out.startsWith("wrote " + out), r.out);
    try (SafetensorsFile got = SafetensorsFile.open(out);
        SafetensorsFile expected =
            SafetensorsFile.open(Golden.file("imagenet64/unet_case.expected.safetensors"))) {
      assertEquals(List.of("sample"), got.names());
      Golden.assertClose("cli imagenet64", expected, "sample", FloatTensor.of(got.get("sample")),
          Golden.CPU_FP32_TOLERANCE);
    }
  }

  @Test
  void tinyModelFolderWithTapsWritesEveryTap() throws Exception {
    Path out = dir.resolve("tiny.safetensors");
    Result r = run("unet", "--model", Golden.file("tiny/pipeline").toString(), "--taps",
        "--inputs", Golden.file("tiny/unet_case.inputs.safetensors").toString(),
        "--output", out.toString());
    assertEquals(0, r.exit, r.err);
    try (SafetensorsFile got = SafetensorsFile.open(out);
        SafetensorsFile expected =
            SafetensorsFile.open(Golden.file("tiny/unet_case.expected.safetensors"))) {
      for (String name : expected.names()) {
        Golden.assertClose("cli tiny", expected, name, FloatTensor.of(got.get(name)),
            Golden.CPU_FP32_TOLERANCE);
      }
    }
  }

  @Test
  void truncatedInputs() throws Exception {
    Path bad = dir.resolve("truncated.safetensors");
    byte[] full = Files.readAllBytes(Golden.file("tiny/unet_case.inputs.safetensors"));
    Files.write(bad, Arrays.copyOf(full, full.length - 100));
    Result r = tiny("--inputs", bad.toString());
    assertBadInput(r, "--inputs " + bad, "truncated");
    assertNoOutput();
  }

  @Test
  void corruptWeightsFile() throws Exception {
    Path model = modelFolder(Files.readString(tinyConfig()));
    Path weights = model.resolve("diffusion_pytorch_model.safetensors");
    byte[] bytes = Files.readAllBytes(Golden.file(
        "tiny/pipeline/unet/diffusion_pytorch_model.safetensors"));
    bytes[8] = '['; // the header's opening '{'
    Files.write(weights, bytes);
    Result r = tiny("--model", model.toString());
    assertBadInput(r, "--model " + weights, "header");
  }

  @Test
  void wrongWeightShapes() throws Exception {
    Path model = modelFolder(Files.readString(tinyConfig()));
    rewriteTinyWeights(model, "conv_in.weight", new long[] {3, 32, 3, 3});
    Result r = tiny("--model", model.toString());
    assertBadInput(r, "--model", "conv_in.weight", "[32, 3, 3, 3]", "[3, 32, 3, 3]");
  }

  @Test
  void missingWeightKeys() throws Exception {
    Path model = modelFolder(Files.readString(tinyConfig()));
    rewriteTinyWeights(model, "conv_out.bias", null);
    Result r = tiny("--model", model.toString());
    assertBadInput(r, "--model", "missing", "conv_out.bias");
  }

  @Test
  void unknownBlockType() throws Exception {
    Path config = dir.resolve("config.json");
    Files.writeString(config,
        Files.readString(tinyConfig()).replace("\"AttnDownBlock2D\"", "\"MysteryBlock2D\""));
    Result r = run("unet", "--config", config.toString(), "--random-weights", "1",
        "--inputs", Golden.file("tiny/unet_case.inputs.safetensors").toString(),
        "--output", dir.resolve("out.safetensors").toString());
    assertBadInput(r, "--config " + config, "MysteryBlock2D");
  }

  @Test
  void classLabelOutOfRange() throws Exception {
    Path inputs = tinyInputs("class_labels", new long[] {1000, 0, 0});
    Result r = tiny("--inputs", inputs.toString());
    assertBadInput(r, "--inputs " + inputs,
        "class_labels[0]: expected a label in [0, 1000), found 1000");
    assertNoOutput();
  }

  @Test
  void wrongInputRank() throws Exception {
    Path inputs = dir.resolve("rank3.safetensors");
    try (SafetensorsFile in = SafetensorsFile.open(Golden.file("tiny/unet_case.inputs.safetensors"))) {
      TensorEntry sample = in.get("sample");
      long[] s = sample.shape();
      new SafetensorsWriter()
          .add("sample", sample.dtype(), new long[] {s[0] * s[1], s[2], s[3]}, sample.data())
          .add("timestep", in.get("timestep").dtype(), in.get("timestep").shape(),
              in.get("timestep").data())
          .add("class_labels", in.get("class_labels").dtype(), in.get("class_labels").shape(),
              in.get("class_labels").data())
          .write(inputs);
    }
    Result r = tiny("--inputs", inputs.toString());
    assertBadInput(r, "--inputs " + inputs, "sample: expected rank 4", "found rank 3");
  }

  @Test
  void usageErrors() {
    assertBadInput(run("unet", "--inputs", "a", "--output", "b"),
        "expected --model DIR|FILE, or --config config.json with --random-weights SEED");
    assertBadInput(run("unet", "--config", "c.json", "--inputs", "a", "--output", "b"),
        "--config needs --random-weights SEED");
    assertBadInput(run("unet", "--model", "m", "--random-weights", "1", "--inputs", "a",
        "--output", "b"), "--model cannot be combined");
    assertBadInput(run("unet", "--model", "m", "--device", "tpu", "--inputs", "a",
        "--output", "b"), "--device", "invalid device 'tpu'");
    assertBadInput(run("unet", "--model", "m"), "Missing required options", "--inputs");
    assertBadInput(run("unet", "--model", dir.resolve("absent").toString(), "--inputs",
        Golden.file("tiny/unet_case.inputs.safetensors").toString(),
        "--output", dir.resolve("o.safetensors").toString()), "no such file or folder");
    assertBadInput(run("unet", "--model", "m", "--inputs", "a",
        "--output", dir.resolve("no/such/dir/o.safetensors").toString()), "--output",
        "does not exist");
    assertBadInput(tiny("--dtype", "fp16"), "--dtype fp16", "expected fp32");
  }

  @Test
  void helpExitsZero() {
    Result r = run("unet", "--help");
    assertEquals(0, r.exit);
    assertTrue(r.out.contains("--random-weights=SEED"), r.out);
    assertEquals(0, run("--help").exit);
  }

  // --- helpers ---

  /** The tiny golden case, with some options replaced or added. */
  private Result tiny(String... overrides) {
    List<String> args = new java.util.ArrayList<>(List.of("unet",
        "--model", Golden.file("tiny/pipeline").toString(),
        "--inputs", Golden.file("tiny/unet_case.inputs.safetensors").toString(),
        "--output", dir.resolve("out.safetensors").toString()));
    for (int i = 0; i < overrides.length; i += 2) {
      int at = args.indexOf(overrides[i]);
      if (at >= 0) {
        args.set(at + 1, overrides[i + 1]);
      } else {
        args.add(overrides[i]);
        args.add(overrides[i + 1]);
      }
    }
    return run(args.toArray(new String[0]));
  }

  private static Path tinyConfig() {
    return Golden.file("tiny/pipeline/unet/config.json");
  }

  private Path modelFolder(String config) throws IOException {
    Path model = Files.createTempDirectory(dir, "model");
    Files.writeString(model.resolve("config.json"), config);
    return model;
  }

  /** Copies the tiny weights into {@code model}, reshaping {@code name} or (shape null) dropping it. */
  private static void rewriteTinyWeights(Path model, String name, long[] shape)
      throws IOException {
    try (SafetensorsFile src = SafetensorsFile.open(
        Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.safetensors"))) {
      SafetensorsWriter w = new SafetensorsWriter();
      for (String n : src.names()) {
        TensorEntry t = src.get(n);
        if (!n.equals(name)) {
          w.add(n, t.dtype(), t.shape(), t.data());
        } else if (shape != null) {
          w.add(n, t.dtype(), shape, t.data());
        }
      }
      w.write(model.resolve("diffusion_pytorch_model.safetensors"));
    }
  }

  /** The tiny inputs with one tensor replaced by int64 values. */
  private Path tinyInputs(String replaced, long[] values) throws IOException {
    Path p = dir.resolve("inputs.safetensors");
    try (SafetensorsFile in = SafetensorsFile.open(Golden.file("tiny/unet_case.inputs.safetensors"))) {
      SafetensorsWriter w = new SafetensorsWriter();
      for (String n : in.names()) {
        TensorEntry t = in.get(n);
        if (n.equals(replaced)) {
          w.addLongs(n, new long[] {values.length}, values);
        } else {
          w.add(n, t.dtype(), t.shape(), t.data());
        }
      }
      w.write(p);
    }
    return p;
  }

  private void assertNoOutput() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      assertFalse(files.anyMatch(p -> p.getFileName().toString().startsWith("out")
          || p.getFileName().toString().endsWith(".tmp")), "output written on failure");
    }
  }
}
