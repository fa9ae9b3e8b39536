package io.cm4j.edit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Golden;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.pipeline.TorchGenerator;
import io.cm4j.weights.SafetensorsFile;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every golden editing case (../shared/golden/editing, computed by the original OpenAI code and
 * diffusers) through the Java step-by-step loop on the CPU: out and reference within 1e-4
 * relative L2 in float32 and no 8-bit pixel off by more than 1; out within 6e-2 in bf16.
 */
class EditGoldenTest {
  static final double BF16_TOLERANCE = 6e-2;
  private static UNet fp32;
  private static UNet bf16;
  private static SchedulerConfig config;

  @BeforeAll
  static void open() throws Exception {
    Path model = Golden.file("tiny/pipeline");
    fp32 = UNet.open(model, Device.CPU, Precision.FP32);
    bf16 = UNet.open(model, Device.CPU, Precision.BF16);
    config = ConsistencyModelPipeline.readSchedulerConfig(model);
  }

  @AfterAll
  static void close() {
    fp32.close();
    bf16.close();
  }

  static EditRequest request(EditTask task) throws Exception {
    return EditInputs.read(Golden.file("editing/tiny_" + task.cliName() + ".inputs.safetensors"),
        task).build();
  }

  static SafetensorsFile expected(EditTask task) throws Exception {
    return SafetensorsFile.open(
        Golden.file("editing/tiny_" + task.cliName() + ".expected.safetensors"));
  }

  /** Asserts out, reference and uint8 against the golden file of the task. */
  static void assertGolden(String what, EditTask task, EditResult result) throws Exception {
    try (SafetensorsFile expected = expected(task)) {
      Golden.assertClose(what + " " + task.cliName(), expected, "out", result.out(),
          Golden.CPU_FP32_TOLERANCE);
      if (expected.contains("reference")) {
        // sdedit's y is its image; denoise's reference is the clean image
        FloatTensor y = result.reference() != null ? result.reference() : request(task).image();
        Golden.assertClose(what + " " + task.cliName(), expected, "reference", y,
            Golden.CPU_FP32_TOLERANCE);
      }
      assertUint8(expected, result.toUint8());
    }
  }

  static void assertUint8(SafetensorsFile expected, byte[] actual) throws Exception {
    java.nio.ByteBuffer u = expected.get("uint8").data();
    assertEquals(u.remaining(), actual.length, "uint8: element count");
    int worst = 0;
    for (int i = 0; i < actual.length; i++) {
      worst = Math.max(worst, Math.abs((u.get(i) & 0xff) - (actual[i] & 0xff)));
    }
    System.out.println("golden uint8: largest difference " + worst);
    assertTrue(worst <= 1, "uint8: a pixel is off by " + worst);
  }

  @ParameterizedTest
  @EnumSource(EditTask.class)
  void stepByStepFp32MatchesTheOriginal(EditTask task) throws Exception {
    ImageEditor editor = new ImageEditor(fp32, config);
    Editing editing = editor.start(request(task));
    try (SafetensorsFile expected = expected(task)) {
      String initial = task == EditTask.INTERPOLATE ? "latents" : "x_init";
      float[] x = editing.sample();
      if (task == EditTask.INTERPOLATE) {
        float sigma0 = 80f;
        for (int i = 0; i < x.length; i++) {
          x[i] /= sigma0;
        }
      }
      double err = Golden.relativeL2(x, expected.floats(initial));
      System.out.printf("golden %s %s: relative L2 error %.3e%n", task.cliName(), initial, err);
      assertTrue(err <= 1e-6, initial + ": relative L2 error " + err);
    }
    editor.runStepByStep(List.of(editing));
    assertGolden("java fp32", task, editing.result());
  }

  @ParameterizedTest
  @EnumSource(EditTask.class)
  void bf16WithinItsBound(EditTask task) throws Exception {
    EditResult result = new ImageEditor(bf16, config).edit(request(task));
    try (SafetensorsFile expected = expected(task)) {
      Golden.assertClose("bf16 " + task.cliName(), expected, "out", result.out(),
          BF16_TOLERANCE);
    }
    assertArrayEquals(request(task).classLabels(), result.classLabels());
  }

  /**
   * Interpolation is the pipeline on the interpolated latents, as diffusers runs it: at alpha
   * 0, with a two-step schedule that starts below sigma_max (sigma(20) = 2.24), the image
   * generate gives for latents z1. Both scale the latents by init_noise_sigma (80) whatever the
   * first step's sigma, and both draw the step noise from the seed.
   */
  @Test
  void interpolateAtAlphaZeroIsGenerateOnZ1() throws Exception {
    TorchGenerator g = new TorchGenerator(5);
    FloatTensor z1 = FloatTensor.of(new long[] {1, 3, 32, 32}, g.randn(1, 3, 32, 32));
    FloatTensor z2 = FloatTensor.of(new long[] {1, 3, 32, 32}, g.randn(1, 3, 32, 32));
    EditResult edit = new ImageEditor(fp32, config).edit(EditRequest.builder(
        EditTask.INTERPOLATE).alphas(0).latents(z1, z2).timesteps(30, 20).classLabels(145)
        .seed(9).build());
    GenerationResult generated = new ConsistencyModelPipeline(fp32, config).generate(
        GenerationRequest.builder().latents(z1).timesteps(30, 20).classLabels(145).seed(9)
            .build());
    double e = Golden.relativeL2(edit.images().toArray(), generated.images().toArray());
    assertTrue(e < 1e-6, "interpolate vs generate: rel L2 " + e);
  }
}
