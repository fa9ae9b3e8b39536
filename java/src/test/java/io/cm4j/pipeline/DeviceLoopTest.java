package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.ErrorCode;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.SamplingSteps;
import io.cm4j.UNet;
import io.cm4j.WeightSource;
import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The sampling loop on the UNet's device ({@link ConsistencyModelPipeline.Sampling#runSteps},
 * {@link UNet#sample}) against the Java loop ({@code modelInput}, {@link UNet#forward},
 * {@code step}), bit for bit, on the tiny model: class-conditional (its golden weights) and
 * unconditional (synth-v1), one step and several, clip on and off, batch 1 and 3.
 */
class DeviceLoopTest {
  private static UNet conditional;
  private static UNet unconditional;

  @BeforeAll
  static void openModels(@TempDir Path tmp) throws Exception {
    conditional = UNet.open(GoldenFiles.file("tiny/pipeline"));
    Map<String, Object> config = Json.parseObject(Files.readString(
        GoldenFiles.file("tiny/pipeline/unet/config.json")));
    config.put("num_class_embeds", null);
    Path file = Files.writeString(tmp.resolve("config.json"), Json.write(config));
    unconditional = UNet.create(file, WeightSource.synthV1(1), Device.CPU, Precision.FP32);
  }

  @AfterAll
  static void close() {
    conditional.close();
    unconditional.close();
  }

  /** A pipeline over a shared UNet (closed by {@link #close()}, not by the pipeline). */
  private static ConsistencyModelPipeline pipeline(boolean classes, SchedulerConfig config) {
    return new ConsistencyModelPipeline(classes ? conditional : unconditional, config);
  }

  private static SchedulerConfig config(boolean clip, double sNoise, double sigmaMin) {
    SchedulerConfig d = SchedulerConfig.DEFAULT;
    return new SchedulerConfig(d.numTrainTimesteps(), sigmaMin, d.sigmaMax(), d.sigmaData(),
        sNoise, d.rho(), clip);
  }

  /** The Java loop, as GenerationService runs it: returns the final sample. */
  private static float[] javaLoop(ConsistencyModelPipeline p, GenerationRequest request)
      throws Cm4jException {
    ConsistencyModelPipeline.Sampling s = p.start(request);
    while (!s.isDone()) {
      float[] t = new float[s.batchSize()];
      Arrays.fill(t, s.timestep());
      FloatTensor out = p.unet().forward(FloatTensor.of(s.shape(), s.modelInput()), t,
          s.classLabels());
      s.step(out.toArray());
    }
    return s.sample();
  }

  static Stream<Arguments> cases() {
    return Stream.of(
        // classes, batch, steps, clip
        Arguments.of(true, 1, 1, true),
        Arguments.of(true, 3, 1, false),
        Arguments.of(true, 3, 3, true),
        Arguments.of(true, 1, 2, false),
        Arguments.of(false, 1, 1, false),
        Arguments.of(false, 3, 2, true),
        Arguments.of(false, 3, 3, false));
  }

  @ParameterizedTest(name = "classes {0}, batch {1}, {2} step(s), clip {3}")
  @MethodSource("cases")
  void theDeviceLoopIsTheJavaLoopBitForBit(boolean classes, int batch, int steps, boolean clip)
      throws Exception {
    ConsistencyModelPipeline p = pipeline(classes, config(clip, 1.0, 0.002));
    GenerationRequest.Builder b = GenerationRequest.builder().batchSize(batch)
        .numInferenceSteps(steps).seed(40L + batch + 10L * steps);
    if (classes) {
      b.classLabels(Arrays.copyOf(new long[] {145, 7, 999}, batch));
    }
    GenerationRequest request = b.build();
    float[] expected = javaLoop(p, request);

    ConsistencyModelPipeline.Sampling all = p.start(request);
    all.runSteps(steps);
    assertArrayEquals(expected, all.sample(), "all steps in one call");
    ConsistencyModelPipeline.Sampling one = p.start(request);
    while (!one.isDone()) {
      one.runSteps(1);
    }
    assertArrayEquals(expected, one.sample(), "a call per step");
    ConsistencyModelPipeline.Sampling mixed = p.start(request); // Java, then the device
    float[] t = new float[batch];
    Arrays.fill(t, mixed.timestep());
    mixed.step(p.unet().forward(FloatTensor.of(mixed.shape(), mixed.modelInput()), t,
        mixed.classLabels()).toArray());
    if (!mixed.isDone()) {
      mixed.runSteps(steps);
    }
    assertArrayEquals(expected, mixed.sample(), "the first step in Java, the rest on device");
    assertArrayEquals(ImageOutput.denormalizeToNhwc(expected, batch, 3, 32, 32),
        p.generate(request).imageArray(), "generate");
  }

  /** The golden pipeline cases: generate's images are the Java loop's, so are its errors. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("io.cm4j.pipeline.ConsistencyModelPipelineTest#pipelineCases")
  void goldenCasesKeepTheJavaLoopsErrors(Path file) throws Exception {
    ConsistencyModelPipeline p = pipeline(true, ConsistencyModelPipeline.readSchedulerConfig(
        GoldenFiles.file("tiny/pipeline")));
    try (SafetensorsFile golden = SafetensorsFile.open(file)) {
      GenerationRequest request = ConsistencyModelPipelineTest.requestFor(golden);
      int batch = request.batchSize();
      float[] javaImage = ImageOutput.denormalizeToNhwc(javaLoop(p, request), batch, 3, 32, 32);
      float[] deviceImage = p.generate(request).imageArray();
      float[] expected = golden.floats("image");
      System.out.printf("golden %s: image max abs error %.3e on the device loop, %.3e in the "
          + "Java loop%n", file.getFileName(), GoldenFiles.maxAbsDiff(expected, deviceImage),
          GoldenFiles.maxAbsDiff(expected, javaImage));
      assertArrayEquals(javaImage, deviceImage);
    }
  }

  @Test
  void sNoiseAndANaNNoiseScaleAreTheJavaLoopsToo() throws Exception {
    GenerationRequest request = GenerationRequest.builder().classLabels(3, 4)
        .timesteps(30, 22, 5).seed(9).build();
    ConsistencyModelPipeline p = pipeline(true, config(true, 0.9, 0.002));
    float[] expected = javaLoop(p, request);
    ConsistencyModelPipeline.Sampling s = p.start(request);
    s.runSteps(3);
    assertArrayEquals(expected, s.sample(), "s_noise 0.9");
    // sqrt(f32(0.0011)^2 - f32(0.0011^2)) is the square root of a negative float: diffusers
    // and the Java scheduler give NaN at the last step, and so does the device loop.
    p = pipeline(true, config(true, 1.0, 0.0011));
    expected = javaLoop(p, request);
    assertTrue(Float.isNaN(expected[0]), "the Java loop's last step is NaN");
    s = p.start(request);
    s.runSteps(3);
    assertArrayEquals(expected, s.sample(), "sigma_min 0.0011");
  }

  @Test
  void badArgumentsAreRefusedBeforeTheNativeCall() throws Exception {
    FloatTensor x = FloatTensor.zeros(2, 3, 32, 32);
    float[] two = {10f, 10f};
    SamplingSteps steps = new SamplingSteps(2, two, two, two, two, two, 1f, true);
    long[] labels = {1, 2};
    assertInvalid("noise: expected [1, 2, 3, 32, 32]", () -> conditional.sample(x, steps,
        FloatTensor.zeros(2, 2, 3, 32, 32), labels));
    assertInvalid("steps: expected values for a batch of 2, found a batch of 1",
        () -> conditional.sample(x, new SamplingSteps(1, two, two, two, two, two, 1f, true), null,
            labels));
    assertInvalid("steps.cOut: expected 2 values (1 steps of 2 images), found 3",
        () -> conditional.sample(x, new SamplingSteps(2, two, two, two, new float[3], two, 1f,
            true), null, labels));
    assertInvalid("steps.timesteps[3] (step 2, image 1): expected a finite value, found NaN",
        () -> conditional.sample(x, new SamplingSteps(2, new float[] {1, 1, 1, Float.NaN},
            new float[4], new float[4], new float[4], new float[4], 1f, true), null, labels));
    assertInvalid("class_labels[1]: expected a label in [0, 1000), found 1000",
        () -> conditional.sample(x, steps, null, new long[] {1, 1000}));
    assertInvalid("class_labels: expected none", () -> unconditional.sample(x, steps, null,
        labels));
    assertInvalid("sample: expected 32x32", () -> conditional.sample(
        FloatTensor.zeros(2, 3, 16, 16), steps, null, labels));
    ConsistencyModelPipeline.Sampling s = pipeline(true, SchedulerConfig.DEFAULT)
        .start(GenerationRequest.builder().classLabels(1).build());
    assertThrows(IllegalArgumentException.class, () -> s.runSteps(0));
    s.runSteps(5); // more than are left: runs the one step there is
    assertTrue(s.isDone());
    assertThrows(IllegalStateException.class, () -> s.runSteps(1));
  }

  private interface Call {
    void run() throws Exception;
  }

  private static void assertInvalid(String fragment, Call call) {
    Cm4jException e = assertThrows(Cm4jException.class, call::run);
    assertEquals(ErrorCode.INVALID_ARGUMENT, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains(fragment), e.getMessage());
  }
}
