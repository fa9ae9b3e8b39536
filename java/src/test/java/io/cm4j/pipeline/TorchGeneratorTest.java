package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * {@link TorchGenerator} against {@code torch_randn_cases.safetensors}: for each case,
 * {@code torch.manual_seed(seed)}, then two {@code torch.randn(shape)} draws. The cases cover the
 * double-precision path with its cached normal (5 elements), one exact 16-block, a size with a
 * redrawn tail (306 = 19 * 16 + 2) and a latent-sized tensor.
 *
 * <p>Tolerance 1e-5 absolute, the project's bound: PyTorch's AVX2 path evaluates log/sin/cos with
 * its own float32 polynomials, which Java's double functions rounded to float match to a few ulp.
 */
class TorchGeneratorTest {
  private static final double TOLERANCE = 1e-5;

  @TestFactory
  List<DynamicTest> everyGoldenCaseFirstAndSecondDraw() throws Exception {
    List<DynamicTest> tests = new ArrayList<>();
    Path file = GoldenFiles.file("torch_randn_cases.safetensors");
    try (SafetensorsFile golden = SafetensorsFile.open(file)) {
      for (String index : new TreeSet<>(golden.metadata().keySet())) {
        Map<String, Object> meta = Json.parseObject(golden.metadata().get(index));
        long seed = (Long) meta.get("seed");
        long[] shape = ((List<?>) meta.get("shape")).stream().mapToLong(d -> (Long) d).toArray();
        float[] first = golden.floats(index + ".first");
        float[] second = golden.floats(index + ".second");
        tests.add(DynamicTest.dynamicTest("case " + index + " " + meta, () -> {
          TorchGenerator g = new TorchGenerator(seed);
          double e1 = GoldenFiles.maxAbsDiff(first, g.randn(shape));
          double e2 = GoldenFiles.maxAbsDiff(second, g.randn(shape));
          System.out.printf("torch_randn case %s %s: max abs error first %.3g, second %.3g%n",
              index, meta, e1, e2);
          assertTrue(e1 <= TOLERANCE, "first draw max abs error " + e1);
          assertTrue(e2 <= TOLERANCE, "second draw max abs error " + e2);
        }));
      }
    }
    assertFalse(tests.isEmpty(), "no cases in torch_randn_cases.safetensors");
    return tests;
  }

  /**
   * The pipeline's use of one generator: latents {@code randn((B, 3, 32, 32))}, then one noise
   * draw per scheduler step, in order, as recorded by each {@code tiny/pipeline_cases} call.
   */
  @TestFactory
  List<DynamicTest> pipelineCasesLatentsThenNoise() throws Exception {
    List<DynamicTest> tests = new ArrayList<>();
    try (DirectoryStream<Path> files =
        Files.newDirectoryStream(GoldenFiles.file("tiny/pipeline_cases"), "*.safetensors")) {
      for (Path file : files) {
        tests.add(DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
          try (SafetensorsFile golden = SafetensorsFile.open(file)) {
            Map<String, Object> call = Json.parseObject(golden.metadata().get("call"));
            TorchGenerator g = new TorchGenerator((Long) call.get("generator_seed"));
            long[] shape = golden.get("latents").shape();
            double worst = GoldenFiles.maxAbsDiff(golden.floats("latents"), g.randn(shape));
            for (int k = 0; golden.contains("noise." + k); k++) {
              worst = Math.max(worst,
                  GoldenFiles.maxAbsDiff(golden.floats("noise." + k), g.randn(shape)));
            }
            System.out.printf("pipeline case %s: latents and noise max abs error %.3g%n",
                file.getFileName(), worst);
            assertTrue(worst <= TOLERANCE, "max abs error " + worst);
          }
        }));
      }
    }
    assertFalse(tests.isEmpty(), "no pipeline cases found");
    return tests;
  }

  @Test
  void manualSeedRestartsTheStreamAndDropsTheCachedNormal() {
    TorchGenerator g = new TorchGenerator(3);
    float[] a = g.randn(3); // leaves a cached normal behind
    g.randn(40);
    assertArrayEquals(a, g.manualSeed(3).randn(3));
  }

  @Test
  void smallDrawsConsumeTheCachedNormalFirst() {
    // Two draws of 1 are one Box-Muller pair: cos then the cached sin.
    TorchGenerator pairwise = new TorchGenerator(11);
    float[] two = new TorchGenerator(11).randn(2);
    assertEquals(two[0], pairwise.randn(1)[0]);
    assertEquals(two[1], pairwise.randn(1)[0]);
  }

  @Test
  void seedUsesOnlyTheLow32Bits() {
    assertArrayEquals(
        new TorchGenerator(5).randn(20), new TorchGenerator(5 + (1L << 32)).randn(20));
  }

  @Test
  void emptyShapeIsAScalarAndZeroDimIsEmpty() {
    assertEquals(1, new TorchGenerator(0).randn().length);
    assertEquals(0, new TorchGenerator(0).randn(2, 0, 3).length);
  }
}
