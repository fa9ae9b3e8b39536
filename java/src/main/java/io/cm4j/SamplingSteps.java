package io.cm4j;

import java.util.Objects;

/**
 * The per-step values of a consistency-model sampling loop run by {@link UNet#sample}, as
 * {@code CMStochasticIterativeScheduler} computes them. Each array holds {@code steps * batch}
 * values, the value of step s for image b at {@code s * batch + b}:
 * <pre>
 * model_input  = sample / inputScale              (scale_model_input)
 * model_output = unet(model_input, timesteps, class_labels)
 * denoised     = cOut * model_output + cSkip * sample, clamped to [-1, 1] when clip
 * sample       = denoised + (noise * sNoise) * noiseScale
 * </pre>
 * The arrays are used as given (not copied); {@link UNet#sample} checks their lengths.
 */
public record SamplingSteps(int batch, float[] timesteps, float[] inputScale, float[] cSkip,
    float[] cOut, float[] noiseScale, float sNoise, boolean clip) {
  public SamplingSteps {
    Objects.requireNonNull(timesteps, "timesteps");
    Objects.requireNonNull(inputScale, "inputScale");
    Objects.requireNonNull(cSkip, "cSkip");
    Objects.requireNonNull(cOut, "cOut");
    Objects.requireNonNull(noiseScale, "noiseScale");
  }

  /**
   * The length of a noise tensor [steps, B, C, S, S] for a sample of {@code elements} values,
   * refused when it passes a Java array's 2^31 - 1.
   *
   * @throws IllegalArgumentException naming both counts, when the product overflows
   */
  public static int noiseLength(int steps, int elements) {
    try {
      return Math.multiplyExact(steps, elements);
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException("the step noise of " + steps + " steps of " + elements
          + " values each is more than 2^31 - 1 values: run fewer images or steps at a time");
    }
  }

  /** The number of steps: {@code timesteps.length / batch}. */
  public int count() {
    return batch <= 0 ? 0 : timesteps.length / batch;
  }
}
