package io.cm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.SafetensorsFile;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The CPU engine against diffusers: the output and every intermediate tap of each golden UNet
 * case, relative L2 error within 1e-4 in float32 (6e-2 in bfloat16).
 */
class UNetGoldenTest {

  @Test
  void tinyWithStoredWeights() throws Exception {
    Path model = Golden.file("tiny/pipeline");
    try (UNet unet = UNet.open(model)) {
      check("tiny", unet);
    }
  }

  @Test
  void imagenet64WithSynthWeights() throws Exception {
    try (UNet unet = UNet.create(Golden.file("imagenet64/config.json"),
        WeightSource.synthV1(1), Device.CPU, Precision.FP32)) {
      assertEquals(1000, unet.numClassEmbeds());
      check("imagenet64", unet);
      // 295.9M float32 parameters, packed
      assertTrue(unet.weightBytes() >= 295_000_000L * 4, "weightBytes " + unet.weightBytes());
      assertTrue(unet.arenaBytes() > 0);
    }
  }

  @Test
  void lsunMiniWithSynthWeights() throws Exception {
    try (UNet unet = UNet.create(Golden.file("lsun_mini/config.json"),
        WeightSource.synthV1(1), Device.CPU, Precision.FP32)) {
      assertFalse(unet.isClassConditional());
      check("lsun_mini", unet);
    }
  }

  @Test
  void lsunMiniOnOneThread() throws Exception {
    // cpu:1 reaches the native thread pool as its size; the numbers stay within the bound.
    try (UNet unet = UNet.create(Golden.file("lsun_mini/config.json"),
        WeightSource.synthV1(1), Device.cpu(1), Precision.FP32)) {
      check("lsun_mini", unet);
    }
  }

  @Test
  void imagenet64InBfloat16() throws Exception {
    try (UNet unet = UNet.create(Golden.file("imagenet64/config.json"),
        WeightSource.synthV1(1), Device.CPU, Precision.BF16)) {
      // bf16 weights: half the float32 bytes
      assertTrue(unet.weightBytes() < 295_000_000L * 3, "weightBytes " + unet.weightBytes());
      check("imagenet64", unet, BF16_TOLERANCE);
    }
  }

  /** The golden README's bound for bfloat16 storage with float32 accumulation. */
  private static final double BF16_TOLERANCE = 6e-2;

  private static void check(String model, UNet unet) throws Exception {
    check(model, unet, Golden.CPU_FP32_TOLERANCE);
  }

  private static void check(String model, UNet unet, double tolerance) throws Exception {
    try (SafetensorsFile in =
            SafetensorsFile.open(Golden.file(model + "/unet_case.inputs.safetensors"));
        SafetensorsFile expected =
            SafetensorsFile.open(Golden.file(model + "/unet_case.expected.safetensors"))) {
      FloatTensor sample = FloatTensor.of(in.get("sample"));
      float[] timestep = in.floats("timestep");
      long[] labels = in.contains("class_labels") ? in.longs("class_labels") : null;
      unet.setCaptureTaps(true);
      FloatTensor out = unet.forward(sample, timestep, labels);
      Map<String, FloatTensor> taps = unet.taps();

      // every error first, so one run shows where a wrong engine starts to diverge
      Map<String, Double> errors = new LinkedHashMap<>();
      for (String name : expected.names()) {
        FloatTensor actual = name.equals("sample") ? out : taps.get(name);
        assertNotNull(actual, model + ": engine did not capture " + name + " (captured "
            + taps.keySet() + ")");
        errors.put(name, Golden.error(model, expected, name, actual));
      }
      assertTrue(errors.containsKey("sample") && errors.size() > 1, errors.toString());
      Map<String, Double> tooLarge = errors.entrySet().stream()
          .filter(e -> !(e.getValue() <= tolerance))
          .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue, (a, b) -> a,
              LinkedHashMap::new));
      assertTrue(tooLarge.isEmpty(), model + ": relative L2 error above "
          + tolerance + " for " + tooLarge);
    }
  }
}
