package io.cm4j.edit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Golden;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.WeightSource;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.weights.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every refused input names its argument and says what was wrong, before any UNet pass. */
class EditValidationTest {
  private static UNet conditional;
  private static UNet unconditional;
  private static ImageEditor editor;

  @BeforeAll
  static void open(@TempDir Path tmp) throws Exception {
    conditional = UNet.open(Golden.file("tiny/pipeline"));
    Map<String, Object> config = Json.parseObject(Files.readString(
        Golden.file("tiny/pipeline/unet/config.json")));
    config.put("num_class_embeds", null);
    Path file = Files.writeString(tmp.resolve("config.json"), Json.write(config));
    unconditional = UNet.create(file, WeightSource.synthV1(1), Device.CPU, Precision.FP32);
    editor = new ImageEditor(conditional, SchedulerConfig.DEFAULT);
  }

  @AfterAll
  static void close() {
    conditional.close();
    unconditional.close();
  }

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    Arrays.fill(a, v);
    return a;
  }

  private static FloatTensor image(int batch, int size) {
    return FloatTensor.zeros(batch, 3, size, size);
  }

  private static void refused(String start, String contains, EditRequest.Builder b) {
    refused(editor, start, contains, b);
  }

  private static void refused(ImageEditor e, String start, String contains,
      EditRequest.Builder b) {
    EditArgumentException ex = assertThrows(EditArgumentException.class,
        () -> e.start(b.build()));
    assertTrue(ex.getMessage().startsWith(start) && ex.getMessage().contains(contains),
        ex.getMessage());
    // The argument by name, for front ends that point at their own option or field.
    assertEquals(start, ex.argument() + ":", ex.getMessage());
  }

  @Test
  void imagesOfAnotherSize() {
    refused("image:", "expected 32x32", EditRequest.builder(EditTask.SDEDIT).image(image(1, 64)));
    refused("image:", "or a size that divides it",
        EditRequest.builder(EditTask.SUPERRES).image(image(1, 5)));
    refused("image:", "needs an image", EditRequest.builder(EditTask.COLORIZE));
    refused("patch:", "divides 32",
        EditRequest.builder(EditTask.SUPERRES).image(image(1, 32)).patch(5));
  }

  @Test
  void masks() {
    EditRequest.Builder b = EditRequest.builder(EditTask.INPAINT).image(image(2, 32));
    refused("mask_keep:", "needs a mask", b);
    refused("mask_keep:", "expected [2, 1, 32, 32]", EditRequest.builder(EditTask.INPAINT)
        .image(image(2, 32)).maskKeep(FloatTensor.zeros(2, 1, 16, 16)));
    float[] half = new float[2 * 32 * 32];
    half[7] = 0.5f;
    refused("mask_keep:", "binary", EditRequest.builder(EditTask.INPAINT).image(image(2, 32))
        .maskKeep(FloatTensor.of(new long[] {2, 1, 32, 32}, half)));
    refused("mask_keep:", "only inpaint", EditRequest.builder(EditTask.SDEDIT)
        .image(image(2, 32)).maskKeep(FloatTensor.zeros(2, 1, 32, 32)));
  }

  @Test
  void sigmaTimestepsAndAlphas() {
    EditRequest.Builder d = EditRequest.builder(EditTask.DENOISE).image(image(1, 32));
    refused("sigma:", "needs", d);
    refused("sigma:", "[0.002, 80.0], found 81.0", d.sigma(81f));
    refused("sigma:", "found 0.001", d.sigma(0.001f));
    refused("sigma:", "NaN", d.sigma(Float.NaN));
    refused("timesteps:", "takes no schedule", d.sigma(1f).timesteps(3, 1));
    refused("steps:", "takes no schedule", d.timesteps((int[]) null).numInferenceSteps(2));
    EditRequest.Builder s = EditRequest.builder(EditTask.SDEDIT).image(image(1, 32));
    refused("timesteps:", "descending", s.timesteps(16, 20));
    refused("timesteps:", "in [0, 40), found 40", s.timesteps(40, 2));
    refused("timesteps:", "found -1", s.timesteps(5, -1));
    refused("steps:", "at least 1", s.timesteps((int[]) null).numInferenceSteps(0));
    EditRequest.Builder i = EditRequest.builder(EditTask.INTERPOLATE);
    refused("alphas:", "at least one", i);
    refused("alphas:", "[0, 1], found 1.5", i.alphas(0, 1.5));
    refused("alphas:", "found NaN", i.alphas(Double.NaN));
    refused("alphas:", "only interpolate", s.numInferenceSteps(null).alphas(0.5));
    refused("latents:", "both", i.alphas(0.5).latents(FloatTensor.zeros(1, 3, 32, 32), null));
    FloatTensor ones = FloatTensor.of(new long[] {1, 3, 32, 32}, filled(3 * 32 * 32, 1f));
    refused("latents:", "z2 is all zeros", i.latents(ones, FloatTensor.zeros(1, 3, 32, 32)));
  }

  @Test
  void classLabels() {
    ImageEditor plain = new ImageEditor(unconditional, SchedulerConfig.DEFAULT);
    refused(plain, "class_labels:", "unconditional",
        EditRequest.builder(EditTask.SDEDIT).image(image(1, 32)).classLabels(3));
    refused("class_labels:", "expected 2 labels",
        EditRequest.builder(EditTask.SDEDIT).image(image(2, 32)).classLabels(3));
    refused("class_labels:", "out of range",
        EditRequest.builder(EditTask.SDEDIT).image(image(1, 32)).classLabels(1000));
  }

  /**
   * A batch over the model's limit (every activation under 2^31 elements) is refused before
   * anything is allocated: the tiny model at sample_size 2048 takes 5 images a call.
   */
  @Test
  void batchesOverTheModelsLimit(@TempDir Path tmp) throws Exception {
    Map<String, Object> config = Json.parseObject(Files.readString(
        Golden.file("tiny/pipeline/unet/config.json")));
    config.put("sample_size", 2048);
    Path file = Files.writeString(tmp.resolve("config.json"), Json.write(config));
    try (UNet big = UNet.create(file, WeightSource.synthV1(1), Device.CPU, Precision.FP32)) {
      assertEquals(5, big.maxBatch());
      refused(new ImageEditor(big, SchedulerConfig.DEFAULT), "alphas:",
          "6 images, at most 5 in one call of this model",
          EditRequest.builder(EditTask.INTERPOLATE).alphas(0, 0.2, 0.4, 0.6, 0.8, 1));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> new ConsistencyModelPipeline(big, SchedulerConfig.DEFAULT).generate(
              GenerationRequest.builder().batchSize(6).build()));
      assertTrue(e.getMessage().startsWith("batch_size: 6 images, at most 5 in one call"),
          e.getMessage());
    }
    // 3 x channels x side^2 at the widest level: 3 x 32 x 32^2 at 32x32
    assertEquals(Integer.MAX_VALUE / (3 * 32 * 32 * 32), conditional.maxBatch());
  }

  @Test
  void batchesNeedOneTaskAndSchedule() {
    EditRequest a = EditRequest.builder(EditTask.SDEDIT).image(image(1, 32)).build();
    EditRequest b = EditRequest.builder(EditTask.SDEDIT).image(image(1, 32)).timesteps(20, 10)
        .build();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> editor.startAll(List.of(a, b)));
    assertTrue(e.getMessage().startsWith("requests[1]: a batch needs one task and schedule"),
        e.getMessage());
  }
}
