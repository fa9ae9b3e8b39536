package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.WeightSource;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The pipeline against diffusers' recorded calls on the tiny model, driven only by each call's
 * seed and arguments: latents and step noise come from the Java generator, not the file.
 */
class ConsistencyModelPipelineTest {
  /** Golden README: no pixel of image_uint8 off by more than 1. */
  private static final int PIXEL_TOLERANCE = 1;
  /** Bound of the issue on the float image. */
  private static final double IMAGE_TOLERANCE = 1e-4;

  private static ConsistencyModelPipeline pipeline;

  @TempDir Path tmp;

  @BeforeAll
  static void openTinyPipeline() throws Exception {
    pipeline = ConsistencyModelPipeline.open(GoldenFiles.file("tiny/pipeline"));
  }

  @AfterAll
  static void close() {
    pipeline.close();
  }

  static Stream<Path> pipelineCases() throws IOException {
    try (Stream<Path> files = Files.list(GoldenFiles.file("tiny/pipeline_cases"))) {
      List<Path> cases = files.filter(p -> p.toString().endsWith(".safetensors")).sorted()
          .toList();
      assertEquals(3, cases.size(), "golden pipeline cases");
      return cases.stream();
    }
  }

  /** The request diffusers' call recorded in the file's metadata {@code call} describes. */
  static GenerationRequest requestFor(SafetensorsFile golden) {
    Map<String, Object> call = Json.parseObject(golden.metadata().get("call"));
    GenerationRequest.Builder b = GenerationRequest.builder()
        .batchSize(((Number) call.get("batch_size")).intValue())
        .seed(((Number) call.get("generator_seed")).longValue());
    if (call.get("timesteps") instanceof List<?> list) {
      b.timesteps(list.stream().mapToInt(v -> ((Number) v).intValue()).toArray());
    } else {
      b.numInferenceSteps(((Number) call.get("num_inference_steps")).intValue());
    }
    Object labels = call.get("class_labels");
    if (labels instanceof List<?> list) {
      b.classLabels(list.stream().mapToLong(v -> ((Number) v).longValue()).toArray());
    } else {
      b.classLabels(((Number) labels).longValue());
    }
    return b.build();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("pipelineCases")
  void matchesDiffusersFromTheSeedAlone(Path file) throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(file)) {
      GenerationRequest request = requestFor(golden);
      GenerationResult result = pipeline.generate(request);

      assertArrayEquals(golden.get("image").shape(), result.shape(), "image shape");
      assertArrayEquals(golden.longs("class_labels"), result.classLabels(), "class labels");
      double imageError = GoldenFiles.maxAbsDiff(golden.floats("image"), result.imageArray());
      long[] expectedPixels = golden.longs("image_uint8");
      byte[] pixels = result.toUint8();
      int worst = 0;
      int off = 0;
      for (int i = 0; i < pixels.length; i++) {
        int d = Math.abs((pixels[i] & 0xff) - (int) expectedPixels[i]);
        worst = Math.max(worst, d);
        off += d > 0 ? 1 : 0;
      }
      System.out.printf("pipeline case %s %s: image max abs error %.3e, uint8 max diff %d "
          + "(%d of %d pixels differ)%n", file.getFileName(), request, imageError, worst, off,
          pixels.length);
      assertTrue(imageError <= IMAGE_TOLERANCE, "image max abs error " + imageError);
      assertTrue(worst <= PIXEL_TOLERANCE, "uint8 max diff " + worst);
    }
  }

  @Test
  void givenLatentsAreUsedInsteadOfTheFirstDraw() throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(
        GoldenFiles.file("tiny/pipeline_cases/onestep.safetensors"))) {
      GenerationRequest bySeed = requestFor(golden); // one step: no noise after the latents
      GenerationRequest byLatents = GenerationRequest.builder().classLabels(145, 7)
          .seed(99).latents(FloatTensor.of(golden.get("latents"))).build();
      GenerationResult a = pipeline.generate(bySeed);
      GenerationResult b = pipeline.generate(byLatents);
      double d = GoldenFiles.maxAbsDiff(a.imageArray(), b.imageArray());
      assertTrue(d <= 1e-6, "seed 12 vs its recorded latents: " + d);
    }
  }

  @Test
  void randomLabelsComeFromTheSeedWithoutDisturbingTheNoise() throws Exception {
    GenerationRequest random = GenerationRequest.builder().batchSize(3).numInferenceSteps(2)
        .seed(5).build();
    GenerationResult drawn = pipeline.generate(random);
    long[] labels = drawn.classLabels();
    assertArrayEquals(ConsistencyModelPipeline.randomClassLabels(5, 3, 1000), labels);
    assertArrayEquals(labels, pipeline.generate(random).classLabels(), "reproducible");
    GenerationResult given = pipeline.generate(GenerationRequest.builder().classLabels(labels)
        .numInferenceSteps(2).seed(5).build());
    // the same labels passed explicitly give the same images: latents and noise are untouched
    assertArrayEquals(given.imageArray(), drawn.imageArray());
  }

  @Test
  void randintFollowsTorchsModuloRule() {
    // std::mt19937's first output for its default seed 5489 is 3499211612
    assertArrayEquals(new long[] {3499211612L % 1000}, new TorchGenerator(5489).randint(0, 1000,
        1));
    // torch.randint(0, n, (b,), generator=torch.manual_seed(s)) printed these (torch 2.11.0)
    assertArrayEquals(new long[] {44, 239, 933, 760}, new TorchGenerator(0).randint(0, 1000, 4));
    assertArrayEquals(new long[] {363, 803, 222, 277, 393, 386, 219, 83},
        new TorchGenerator(12).randint(0, 1000, 8));
    assertArrayEquals(new long[] {5, 0, 2, 3, 5}, new TorchGenerator(123456789).randint(0, 7, 5));
    assertArrayEquals(new long[] {37542, 26067, 86876, 46414, 90026, 47335},
        new TorchGenerator(42).randint(0, 100000, 6));
    assertArrayEquals(new long[] {670, 188, 974, 597},
        new TorchGenerator((1L << 32) + 9).randint(0, 1000, 4));
    long[] many = new TorchGenerator(0).randint(10, 20, 1000);
    assertTrue(Arrays.stream(many).allMatch(v -> v >= 10 && v < 20));
    assertThrows(IllegalArgumentException.class, () -> new TorchGenerator(0).randint(0, 0, 1));
  }

  @Test
  void theListenerSeesEveryStep() throws Exception {
    List<String> steps = new ArrayList<>();
    FloatTensor[] last = new FloatTensor[1];
    GenerationResult r = pipeline.generate(GenerationRequest.builder().classLabels(3)
        .timesteps(30, 22, 5).seed(1).build(), (step, count, t, sample) -> {
          steps.add(step + "/" + count + "@" + t);
          last[0] = sample;
        });
    float[] ts = r.timesteps();
    assertEquals(List.of("0/3@" + ts[0], "1/3@" + ts[1], "2/3@" + ts[2]), steps);
    assertArrayEquals(ImageOutput.denormalizeToNhwc(last[0].toArray(), 1, 3, 32, 32),
        r.imageArray());
  }

  @Test
  void badRequestsAreRefusedBeforeAnyPass() {
    assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder()
        .numInferenceSteps(2).timesteps(22, 0).build());
    assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().batchSize(3)
        .classLabels(1, 2).build());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> pipeline.generate(GenerationRequest.builder().classLabels(1000).build()));
    assertTrue(e.getMessage().contains("[0, 1000)"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> pipeline.generate(GenerationRequest.builder().classLabels(1).timesteps(0, 22)
            .build()));
    assertEquals("`timesteps` must be in descending order.", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> pipeline.generate(GenerationRequest.builder().classLabels(1).timesteps(40, 0)
            .build()));
    assertTrue(e.getMessage().contains("train_timesteps"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> pipeline.generate(GenerationRequest.builder().classLabels(1)
            .latents(FloatTensor.zeros(1, 3, 16, 16)).build()));
    assertTrue(e.getMessage().contains("[1, 3, 32, 32]"), e.getMessage());
  }

  @Test
  void batchesFollowDiffusersLabelRules() {
    GenerationRequest one = GenerationRequest.builder().batchSize(3).classLabels(7).build();
    assertArrayEquals(new long[] {7, 7, 7}, one.classLabels());
    GenerationRequest perLabel = GenerationRequest.builder().classLabels(1, 2).build();
    assertEquals(2, perLabel.batchSize());
    assertEquals(1, perLabel.numInferenceSteps(), "one step by default, as diffusers");
  }

  @Test
  void unconditionalModelsIgnoreLabels() throws Exception {
    Map<String, Object> config = Json.parseObject(Files.readString(
        GoldenFiles.file("tiny/pipeline/unet/config.json")));
    config.put("num_class_embeds", null);
    Path file = Files.writeString(tmp.resolve("config.json"), Json.write(config));
    UNet unet = UNet.create(file, WeightSource.synthV1(1), Device.CPU, Precision.FP32);
    try (ConsistencyModelPipeline p = new ConsistencyModelPipeline(unet, SchedulerConfig.DEFAULT)) {
      GenerationResult without = p.generate(GenerationRequest.builder().seed(3).build());
      GenerationResult with = p.generate(GenerationRequest.builder().classLabels(5).seed(3)
          .build());
      assertNull(without.classLabels());
      assertArrayEquals(without.imageArray(), with.imageArray());
    }
  }

  @Test
  void schedulerConfigIsFoundBesideTheUnet() throws Exception {
    Path dir = GoldenFiles.file("tiny/pipeline").toAbsolutePath().normalize();
    Path expected = dir.resolve("scheduler/scheduler_config.json");
    assertEquals(expected, ConsistencyModelPipeline.findSchedulerConfig(dir).orElseThrow());
    assertEquals(expected, ConsistencyModelPipeline.findSchedulerConfig(dir.resolve("unet"))
        .orElseThrow());
    assertEquals(expected, ConsistencyModelPipeline.findSchedulerConfig(
        dir.resolve("unet/diffusion_pytorch_model.safetensors")).orElseThrow());
    assertEquals(SchedulerConfig.DEFAULT, ConsistencyModelPipeline.readSchedulerConfig(tmp));
  }

  @Test
  void aModelIndexOfAnotherPipelineIsRefused() throws Exception {
    Files.writeString(tmp.resolve("model_index.json"),
        "{\"_class_name\": \"StableDiffusionPipeline\"}");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> ConsistencyModelPipeline.open(tmp));
    assertTrue(e.getMessage().contains("StableDiffusionPipeline"), e.getMessage());
  }
}
