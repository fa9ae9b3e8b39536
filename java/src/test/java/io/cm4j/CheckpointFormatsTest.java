package io.cm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Checkpoints;
import io.cm4j.weights.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The four stored copies of the tiny weights (safetensors, torch .bin, Paddle .pdparams,
 * original OpenAI .pt) each through {@link UNet#open}: the output matches the golden case.
 */
class CheckpointFormatsTest {
  @TempDir Path dir;

  /** Label, weights path, and the config to give (null: the one beside the file). */
  static Stream<Arguments> tinyCopies() {
    Path unet = Golden.file("tiny/pipeline/unet");
    return Stream.of(
        Arguments.of("safetensors", unet.resolve("diffusion_pytorch_model.safetensors"), null),
        Arguments.of("torch", unet.resolve("diffusion_pytorch_model.bin"), null),
        Arguments.of("paddle", unet.resolve("model_state.pdparams"), null),
        Arguments.of("openai", Golden.file("tiny/openai/tiny_cd_test.pt"),
            unet.resolve("config.json")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("tinyCopies")
  void everyFormatMatchesTheGoldenOutput(String format, Path weights, Path config)
      throws Exception {
    try (Checkpoint c = Checkpoints.open(weights, config)) {
      assertEquals(format, c.format());
    }
    try (UNet unet = UNet.open(weights, config, Device.CPU, Precision.FP32)) {
      assertGolden("format " + format, unet);
    }
  }

  @Test
  void aFolderWithOnlyATorchBinLoads() throws Exception {
    Path model = Files.createDirectories(dir.resolve("model/unet"));
    Path unet = Golden.file("tiny/pipeline/unet");
    Files.copy(unet.resolve("config.json"), model.resolve("config.json"));
    Files.copy(unet.resolve("diffusion_pytorch_model.bin"),
        model.resolve("diffusion_pytorch_model.bin"));
    try (UNet u = UNet.open(dir.resolve("model"))) {
      assertGolden("folder with .bin", u);
    }
    try (UNet u = UNet.create(unet.resolve("config.json"),
        WeightSource.checkpoint(model.resolve("diffusion_pytorch_model.bin")), Device.CPU,
        Precision.FP32)) {
      assertGolden("WeightSource.checkpoint(.bin)", u);
    }
  }

  @Test
  void expectedParametersAreTheTinyCheckpointsNamesAndShapes() throws Exception {
    Map<String, long[]> expected = UNet.expectedParameters(
        Golden.file("tiny/pipeline/unet/config.json"));
    assertEquals(225, expected.size());
    try (SafetensorsFile st = SafetensorsFile.open(
        Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.safetensors"))) {
      assertEquals(st.names().stream().sorted().toList(),
          expected.keySet().stream().sorted().toList());
      for (String name : st.names()) {
        assertArrayEquals(st.get(name).shape(), expected.get(name), name);
      }
    }
  }

  @Test
  void anOpenAIFileOfAnotherNameNeedsAConfig() throws Exception {
    Path pt = Files.copy(Golden.file("tiny/openai/tiny_cd_test.pt"), dir.resolve("tiny_cd.pt"));
    CheckpointException e = assertThrows(CheckpointException.class, () -> UNet.open(pt));
    assertTrue(e.getMessage().contains("tiny_cd.pt"), e.getMessage());
    assertTrue(e.getMessage().contains("give a UNet config"), e.getMessage());
  }

  /** A name holding "test" gets diffusers' converter's test config, which the tiny model is. */
  @Test
  void anOpenAITestFileRunsWithTheConvertersTestConfig() throws Exception {
    try (UNet u = UNet.open(Golden.file("tiny/openai/tiny_cd_test.pt"))) {
      assertGolden("tiny_cd_test.pt with no --config", u);
    }
  }

  @Test
  void aWeightsFileWithoutConfigSaysSo() throws Exception {
    Path bin = dir.resolve("diffusion_pytorch_model.bin");
    Files.copy(Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.bin"), bin);
    CheckpointException e = assertThrows(CheckpointException.class, () -> UNet.open(bin));
    assertTrue(e.getMessage().startsWith(bin + ": no UNet config"), e.getMessage());
    try (UNet u = UNet.open(bin, Golden.file("tiny/pipeline/unet/config.json"), Device.CPU,
        Precision.FP32)) {
      assertGolden(".bin with --config", u);
    }
  }

  @Test
  void anOpenAIFileOfAPublishedNameGetsItsShippedScheduler() throws Exception {
    Path pt = dir.resolve("ct_imagenet64.pt");
    Files.copy(Golden.file("tiny/openai/tiny_cd_test.pt"), pt);
    SchedulerConfig config = ConsistencyModelPipeline.readSchedulerConfig(pt);
    assertEquals(201, config.numTrainTimesteps());
    assertTrue(ConsistencyModelPipeline.shippedSchedulerConfig(pt).isPresent());
    // a test checkpoint gets the CD scheduler, as diffusers' converter gives it
    Path test = Golden.file("tiny/openai/tiny_cd_test.pt");
    assertEquals(40, ConsistencyModelPipeline.readSchedulerConfig(test).numTrainTimesteps());
    assertTrue(ConsistencyModelPipeline.shippedSchedulerConfig(test).isPresent());
    // a diffusers file is not an OpenAI file of a published name
    Path bin = Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.bin");
    assertTrue(ConsistencyModelPipeline.shippedSchedulerConfig(bin).isEmpty());
  }

  /** Runs the tiny golden case; asserts the output within the CPU bound, prints the error. */
  static double assertGolden(String what, UNet unet) throws Exception {
    try (SafetensorsFile in = SafetensorsFile.open(
            Golden.file("tiny/unet_case.inputs.safetensors"));
        SafetensorsFile expected = SafetensorsFile.open(
            Golden.file("tiny/unet_case.expected.safetensors"))) {
      FloatTensor out = unet.forward(FloatTensor.of(in.get("sample")), in.floats("timestep"),
          in.longs("class_labels"));
      return Golden.assertClose(what, expected, "sample", out, Golden.CPU_FP32_TOLERANCE);
    }
  }
}
