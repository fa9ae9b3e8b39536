package io.cm4j.pipeline;

import java.util.Arrays;
import java.util.OptionalInt;

/**
 * diffusers' {@code CMStochasticIterativeScheduler} (v0.25): Algorithm 1 of Song et al.,
 * "Consistency Models" (2023), one-step or multistep, on the Karras et al. (2022) sigma schedule.
 *
 * <p>Arithmetic follows diffusers operation by operation so results match it bit for bit where
 * diffusers does: the schedule is computed in double (numpy float64) and rounded to float32 once;
 * everything torch computes on float32 tensors ({@code scale_model_input}, the boundary-condition
 * scalings, {@code step}) is done here in float, with each Python float scalar rounded to float32
 * before use, as torch does when it combines a Python scalar with a float32 tensor.
 *
 * <p>diffusers keeps {@code timesteps} in float64, but every consumer sees them as float32 (the
 * UNet's time projection casts with {@code .float()}), so they are kept in float here; step
 * lookup compares against this scheduler's own array, so the narrowing loses nothing.
 *
 * <p>Stateful (the step index advances with each {@link #step}) and not thread-safe: use one
 * instance per generation, as diffusers does.
 */
public final class CMStochasticIterativeScheduler {
  private final SchedulerConfig config;
  /** [len(timesteps) + 1] after setTimesteps: the schedule's sigmas, then sigma_min. */
  private float[] sigmas;
  private float[] timesteps;
  /** Index into timesteps of the next step; -1 until scaleModelInput or step finds it. */
  private int stepIndex = -1;

  /**
   * A scheduler whose state is that of diffusers' constructor: all {@code num_train_timesteps}
   * sigmas on {@code linspace(0, 1, N)} (diffusers holds these in float64; here they are float32,
   * which only matters if {@code step} is called before {@code setTimesteps}, as no pipeline does).
   */
  public CMStochasticIterativeScheduler(SchedulerConfig config) {
    this.config = config;
    int n = config.numTrainTimesteps();
    double[] ramp = new double[n];
    double step = 1.0 / (n - 1); // numpy's linspace multiplies by the step, then pins the end
    for (int i = 0; i < n; i++) {
      ramp[i] = i * step;
    }
    ramp[n - 1] = 1.0;
    double[] karras = convertToKarras(ramp);
    sigmas = toFloat(karras);
    timesteps = sigmaToT(karras);
  }

  public SchedulerConfig config() {
    return config;
  }

  /** Standard deviation of the initial noise: the pipeline scales its latents by this. */
  public double initNoiseSigma() {
    return config.sigmaMax();
  }

  /** A copy of the current sigmas: one per timestep, then sigma_min. */
  public float[] sigmas() {
    return sigmas.clone();
  }

  /** A copy of the current timesteps, descending. */
  public float[] timesteps() {
    return timesteps.clone();
  }

  /** The index of the next step, empty before the first scaleModelInput or step. */
  public OptionalInt stepIndex() {
    return stepIndex < 0 ? OptionalInt.empty() : OptionalInt.of(stepIndex);
  }

  /**
   * Whether {@link #step} adds noise and so needs a {@code randn} draw: diffusers draws noise at
   * every step of a multistep schedule (the last included) and none for a one-step schedule.
   */
  public boolean drawsNoise() {
    return timesteps.length > 1;
  }

  /** {@code set_timesteps(num_inference_steps)}: evenly spaced training steps. */
  public void setTimesteps(int numInferenceSteps) {
    setTimesteps(Integer.valueOf(numInferenceSteps), null);
  }

  /** {@code set_timesteps(timesteps=...)}: custom training steps, strictly descending. */
  public void setTimesteps(int[] timesteps) {
    setTimesteps(null, timesteps);
  }

  /**
   * diffusers' {@code set_timesteps}: exactly one of the two arguments must be non-null.
   *
   * @throws IllegalArgumentException with diffusers' message when both or neither are given,
   *     custom timesteps are empty, not strictly descending, start at or after
   *     {@code num_train_timesteps} or end below 0, or the step count is not in [1, num_train_timesteps]
   */
  public void setTimesteps(Integer numInferenceSteps, int[] customTimesteps) {
    if (numInferenceSteps == null && customTimesteps == null) {
      throw new IllegalArgumentException(
          "Exactly one of `num_inference_steps` or `timesteps` must be supplied.");
    }
    if (numInferenceSteps != null && customTimesteps != null) {
      throw new IllegalArgumentException(
          "Can only pass one of `num_inference_steps` or `timesteps`.");
    }
    int trainSteps = config.numTrainTimesteps();
    int[] steps;
    if (customTimesteps != null) {
      steps = checkedCustomTimesteps(customTimesteps, trainSteps);
    } else {
      steps = evenTimesteps(numInferenceSteps, trainSteps);
    }
    // The training step t maps to ramp t / (N - 1), with t = 0 at sigma_max, as in OpenAI's
    // karras_diffusion.py: the ramp ascends where the timesteps descend.
    double[] ramp = new double[steps.length];
    for (int i = 0; i < steps.length; i++) {
      ramp[i] = steps[steps.length - 1 - i] / (double) (trainSteps - 1);
    }
    double[] karras = convertToKarras(ramp);
    timesteps = sigmaToT(karras);
    sigmas = Arrays.copyOf(toFloat(karras), karras.length + 1);
    sigmas[karras.length] = (float) config.sigmaMin();
    stepIndex = -1;
  }

  private static int[] checkedCustomTimesteps(int[] timesteps, int trainSteps) {
    if (timesteps.length == 0) {
      throw new IllegalArgumentException("`timesteps` must not be empty.");
    }
    for (int i = 1; i < timesteps.length; i++) {
      if (timesteps[i] >= timesteps[i - 1]) {
        throw new IllegalArgumentException("`timesteps` must be in descending order.");
      }
    }
    if (timesteps[0] >= trainSteps) {
      throw new IllegalArgumentException(
          "`timesteps` must start before `self.config.train_timesteps`: " + trainSteps + ".");
    }
    // diffusers takes a negative one, for a sigma past sigma_max (infinite, far enough): a
    // silently wrong image, where every other entry point refuses it.
    int last = timesteps[timesteps.length - 1];
    if (last < 0) {
      throw new IllegalArgumentException("`timesteps` must not be negative, found " + last + ".");
    }
    return timesteps.clone();
  }

  private static int[] evenTimesteps(int numInferenceSteps, int trainSteps) {
    if (numInferenceSteps > trainSteps) {
      throw new IllegalArgumentException(
          "`num_inference_steps`: " + numInferenceSteps
              + " cannot be larger than `self.config.train_timesteps`: " + trainSteps
              + " as the unet model trained with this scheduler can only handle maximal "
              + trainSteps + " timesteps.");
    }
    if (numInferenceSteps < 1) {
      // diffusers fails here with ZeroDivisionError (0) or an empty schedule (negative).
      throw new IllegalArgumentException(
          "`num_inference_steps` must be at least 1, found " + numInferenceSteps + ".");
    }
    int stepRatio = trainSteps / numInferenceSteps;
    int[] steps = new int[numInferenceSteps];
    for (int i = 0; i < numInferenceSteps; i++) {
      steps[i] = (numInferenceSteps - 1 - i) * stepRatio;
    }
    return steps;
  }

  /**
   * Karras et al. (2022) sigmas at the given ramp positions, in double like diffusers' numpy code.
   * StrictMath keeps the schedule identical on every JVM and CPU.
   */
  private double[] convertToKarras(double[] ramp) {
    double rho = config.rho();
    double minInvRho = StrictMath.pow(config.sigmaMin(), 1 / rho);
    double maxInvRho = StrictMath.pow(config.sigmaMax(), 1 / rho);
    double[] out = new double[ramp.length];
    for (int i = 0; i < ramp.length; i++) {
      out[i] = StrictMath.pow(maxInvRho + ramp[i] * (minInvRho - maxInvRho), rho);
    }
    return out;
  }

  /**
   * diffusers' {@code sigma_to_t}: the UNet's timestep input for a sigma,
   * {@code 1000 * 0.25 * ln(sigma + 1e-44)}, in double.
   */
  public static double sigmaToT(double sigma) {
    return 1000 * 0.25 * StrictMath.log(sigma + 1e-44);
  }

  private static float[] sigmaToT(double[] sigmas) {
    float[] out = new float[sigmas.length];
    for (int i = 0; i < sigmas.length; i++) {
      out[i] = (float) sigmaToT(sigmas[i]);
    }
    return out;
  }

  private static float[] toFloat(double[] values) {
    float[] out = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (float) values[i];
    }
    return out;
  }

  /**
   * diffusers' {@code _init_step_index}: the position of {@code timestep} in the schedule.
   * diffusers takes the second match when there are several so image-to-image does not skip a
   * sigma; this schedule's timesteps are strictly decreasing, so there is at most one.
   */
  private void initStepIndex(float timestep) {
    stepIndex = indexForTimestep(timestep);
  }

  private int indexForTimestep(float timestep) {
    for (int i = 0; i < timesteps.length; i++) {
      if (timesteps[i] == timestep) {
        return i;
      }
    }
    throw new IllegalArgumentException(
        "timestep " + timestep + " is not in the schedule " + Arrays.toString(timesteps));
  }

  /**
   * {@code scale_model_input}: {@code sample / sqrt(sigma^2 + sigma_data^2)}, the EDM input
   * scaling, for the sigma of the current step (found from {@code timestep} on the first call).
   */
  public float[] scaleModelInput(float[] sample, float timestep) {
    if (stepIndex < 0) {
      initStepIndex(timestep);
    }
    float scale = inputScale(currentSigma());
    float[] out = new float[sample.length];
    for (int i = 0; i < sample.length; i++) {
      out[i] = sample[i] / scale;
    }
    return out;
  }

  /** What {@link #scaleModelInput} divides by: {@code sqrt(sigma^2 + sigma_data^2)}. */
  private float inputScale(float sigma) {
    float sigmaData2 = (float) (config.sigmaData() * config.sigmaData());
    return (float) Math.sqrt(sigma * sigma + sigmaData2);
  }

  /** The consistency-model skip and output weights of a sigma (Appendix C of the paper). */
  public record BoundaryScalings(float cSkip, float cOut) {}

  /**
   * {@code get_scalings_for_boundary_condition}: c_skip = sigma_data^2 / ((sigma - sigma_min)^2 +
   * sigma_data^2) and c_out = (sigma - sigma_min) sigma_data / sqrt(sigma^2 + sigma_data^2), with
   * the boundary epsilon set to sigma_min, so that the model is the identity at sigma_min.
   */
  public BoundaryScalings getScalingsForBoundaryCondition(float sigma) {
    float sigmaMin = (float) config.sigmaMin();
    float sigmaData = (float) config.sigmaData();
    float sigmaData2 = (float) (config.sigmaData() * config.sigmaData());
    float shifted = sigma - sigmaMin;
    // torch evaluates `python_float / tensor` as tensor.reciprocal() * python_float.
    float cSkip = (1f / (shifted * shifted + sigmaData2)) * sigmaData2;
    float cOut = shifted * sigmaData / (float) Math.sqrt(sigma * sigma + sigmaData2);
    return new BoundaryScalings(cSkip, cOut);
  }

  /**
   * One step of Algorithm 1: denoise with the boundary-condition scalings, clip if configured,
   * then (diffusers does this at every step, the last included) add noise for the next sigma:
   * {@code prev = denoised + noise * s_noise * sqrt(sigma_hat^2 - sigma_min^2)} with
   * sigma_hat the next sigma clamped to [sigma_min, sigma_max]. At the last step sigma_hat is
   * float32(sigma_min), so the noise is scaled by about 7e-7 rather than 0, as in diffusers.
   *
   * @param modelOutput the UNet output for {@link #scaleModelInput}'s result, same layout as sample
   * @param timestep the current entry of {@link #timesteps()}
   * @param sample the current sample
   * @param noise the next {@code randn(sample shape)} draw when {@link #drawsNoise()}; ignored
   *     (diffusers uses zeros) for a one-step schedule, so it may then be null
   * @return the sample for the next timestep
   */
  public float[] step(float[] modelOutput, float timestep, float[] sample, float[] noise) {
    if (modelOutput.length != sample.length) {
      throw new IllegalArgumentException("expected modelOutput of " + sample.length
          + " elements like sample, found " + modelOutput.length);
    }
    boolean noisy = drawsNoise();
    if (noisy && (noise == null || noise.length != sample.length)) {
      throw new IllegalArgumentException("a multistep schedule needs noise of " + sample.length
          + " elements, found " + (noise == null ? "none" : noise.length));
    }
    checkStep(timestep);
    BoundaryScalings s = getScalingsForBoundaryCondition(sigmas[stepIndex]);
    float noiseScale = noiseScale();
    float sNoise = (float) config.sNoise();
    boolean clip = config.clipDenoised();

    float[] prev = new float[sample.length];
    for (int i = 0; i < sample.length; i++) {
      float denoised = s.cOut() * modelOutput[i] + s.cSkip() * sample[i];
      if (clip) {
        denoised = Math.min(Math.max(denoised, -1f), 1f);
      }
      float z = (noisy ? noise[i] : 0f) * sNoise;
      prev[i] = denoised + z * noiseScale;
    }
    stepIndex++;
    return prev;
  }

  /** Finds the step index on the first call, and refuses a step past the last. */
  private void checkStep(float timestep) {
    if (stepIndex < 0) {
      initStepIndex(timestep);
    }
    if (stepIndex >= timesteps.length) {
      throw new IllegalStateException(
          "step called after the last of " + timesteps.length + " timesteps");
    }
  }

  /** The current step's noise scale, {@code sqrt(sigma_hat^2 - sigma_min^2)}. */
  private float noiseScale() {
    // Before setTimesteps there is no trailing sigma_min, hence diffusers' fallback to the last.
    float sigmaNext = stepIndex + 1 < config.numTrainTimesteps()
        ? sigmas[stepIndex + 1] : sigmas[sigmas.length - 1];
    float sigmaMin = (float) config.sigmaMin();
    float sigmaHat = Math.min(Math.max(sigmaNext, sigmaMin), (float) config.sigmaMax());
    // sigma_hat**2 is float32; sigma_min**2 is a Python double, rounded to float32 by torch.
    return (float) Math.sqrt(
        sigmaHat * sigmaHat - (float) (config.sigmaMin() * config.sigmaMin()));
  }

  /**
   * The scalars of one step, for a loop that applies {@link #scaleModelInput} and {@link #step}
   * elsewhere ({@code UNet.sample}, on the UNet's device): {@code scaleModelInput} divides by
   * {@code inputScale}, {@code step} computes
   * {@code cOut * modelOutput + cSkip * sample} (clipped when configured), then adds
   * {@code noise * s_noise * noiseScale}.
   */
  public record StepScalings(float inputScale, float cSkip, float cOut, float noiseScale) {}

  /**
   * The scalars {@link #scaleModelInput} and {@link #step} use for the step at
   * {@code timestep}, computed by the same code, and advances past that step as {@link #step}
   * does.
   *
   * @throws IllegalArgumentException when the timestep is not in the schedule
   * @throws IllegalStateException after the last step
   */
  public StepScalings takeStep(float timestep) {
    checkStep(timestep);
    float sigma = sigmas[stepIndex];
    BoundaryScalings s = getScalingsForBoundaryCondition(sigma);
    StepScalings out = new StepScalings(inputScale(sigma), s.cSkip(), s.cOut(), noiseScale());
    stepIndex++;
    return out;
  }

  /**
   * The scalars of a denoising step at any sigma, on the schedule or not (the original's
   * {@code KarrasDenoiser.denoise}), by the code {@link #takeStep} uses; {@code noiseScale} 0.
   * The state does not change.
   */
  public StepScalings scalingsAt(float sigma) {
    BoundaryScalings s = getScalingsForBoundaryCondition(sigma);
    return new StepScalings(inputScale(sigma), s.cSkip(), s.cOut(), 0f);
  }

  /**
   * {@code add_noise}: {@code original + noise * sigma(t_b)} for each batch item b, where
   * {@code timesteps[b]} must be in the schedule. Both arrays are [B, ...] row-major.
   */
  public float[] addNoise(float[] originalSamples, float[] noise, float[] timesteps) {
    int batch = timesteps.length;
    if (noise.length != originalSamples.length || batch == 0
        || originalSamples.length % batch != 0) {
      throw new IllegalArgumentException("expected noise of " + originalSamples.length
          + " elements and a batch that divides it, found noise of " + noise.length
          + " and " + batch + " timesteps");
    }
    int perItem = originalSamples.length / batch;
    float[] out = new float[originalSamples.length];
    for (int b = 0; b < batch; b++) {
      float sigma = sigmas[indexForTimestep(timesteps[b])];
      for (int i = b * perItem; i < (b + 1) * perItem; i++) {
        out[i] = originalSamples[i] + noise[i] * sigma;
      }
    }
    return out;
  }

  private float currentSigma() {
    if (stepIndex >= sigmas.length) {
      throw new IllegalStateException("no sigma left: the schedule has been stepped through");
    }
    return sigmas[stepIndex];
  }
}
