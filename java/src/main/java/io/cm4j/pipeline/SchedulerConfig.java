package io.cm4j.pipeline;

import io.cm4j.weights.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The keys of diffusers' {@code CMStochasticIterativeScheduler} config
 * ({@code scheduler/scheduler_config.json}), with diffusers' defaults. Values stay in double, as
 * the Python floats in diffusers' config do.
 *
 * @param numTrainTimesteps {@code num_train_timesteps}: 40 for CD checkpoints, 201 or 151 for CT
 * @param sigmaMin {@code sigma_min}, also the boundary-condition epsilon
 * @param sigmaMax {@code sigma_max}, also {@code init_noise_sigma}
 * @param sigmaData {@code sigma_data}
 * @param sNoise {@code s_noise}: scale of the noise added between steps
 * @param rho {@code rho} of the Karras schedule
 * @param clipDenoised {@code clip_denoised}: clamp the denoised sample to [-1, 1]
 */
public record SchedulerConfig(
    int numTrainTimesteps,
    double sigmaMin,
    double sigmaMax,
    double sigmaData,
    double sNoise,
    double rho,
    boolean clipDenoised) {

  /** The class name diffusers writes into {@code _class_name}. */
  public static final String CLASS_NAME = "CMStochasticIterativeScheduler";

  /** diffusers' constructor defaults (the CD ImageNet-64 checkpoints' values). */
  public static final SchedulerConfig DEFAULT =
      new SchedulerConfig(40, 0.002, 80.0, 0.5, 1.0, 7.0, true);

  /** Most training timesteps: the schedule keeps a sigma per step (CT checkpoints: 201). */
  static final int MAX_TRAIN_TIMESTEPS = 1_000_000;
  /**
   * Bounds on the sigmas, sigma_data and s_noise: the sampling loop runs in float32, where
   * sigma^2 + sigma_data^2 must stay finite (1e15 squared is 1e30, under float32's 3.4e38)
   * and sigma_min must stay a normal number once rounded (the checkpoints use 0.002 to 80).
   */
  static final double MAX_SIGMA = 1e15;
  static final double MIN_SIGMA = 1e-15;

  /**
   * Rejects values for which diffusers would silently produce NaN or infinite sigmas (a one-entry
   * ramp divides by zero; non-positive sigmas or rho have no real power), and values past what
   * float32 sampling holds (see {@link #MAX_SIGMA}).
   */
  public SchedulerConfig {
    if (numTrainTimesteps < 2 || numTrainTimesteps > MAX_TRAIN_TIMESTEPS) {
      throw new IllegalArgumentException("`num_train_timesteps` must be in [2, "
          + MAX_TRAIN_TIMESTEPS + "], found " + numTrainTimesteps);
    }
    if (!(sigmaMin >= MIN_SIGMA) || !(sigmaMax > sigmaMin) || !(sigmaMax <= MAX_SIGMA)) {
      throw new IllegalArgumentException("expected " + MIN_SIGMA + " <= `sigma_min` < "
          + "`sigma_max` <= " + MAX_SIGMA + ", found sigma_min=" + sigmaMin + ", sigma_max="
          + sigmaMax);
    }
    if (!(sigmaData > 0 && sigmaData <= MAX_SIGMA) || !(rho > 0 && Double.isFinite(rho))
        || !(sNoise >= 0 && sNoise <= MAX_SIGMA)) {
      throw new IllegalArgumentException("expected 0 < `sigma_data` <= " + MAX_SIGMA
          + ", `rho` > 0 (finite) and 0 <= `s_noise` <= " + MAX_SIGMA + ", found sigma_data="
          + sigmaData + ", rho=" + rho + ", s_noise=" + sNoise);
    }
  }

  /** Reads {@code scheduler_config.json}. */
  public static SchedulerConfig read(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    try {
      return fromMap(Json.parseObject(text));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Builds a config from parsed JSON; missing keys take diffusers' defaults. Keys diffusers would
   * ignore (bookkeeping such as {@code _diffusers_version}, or keys of other versions) are ignored
   * here too, but a config written for another scheduler class is refused.
   */
  public static SchedulerConfig fromMap(Map<String, Object> json) {
    Object className = json.get("_class_name");
    if (className != null && !CLASS_NAME.equals(className)) {
      throw new IllegalArgumentException(
          "expected a " + CLASS_NAME + " config, found _class_name " + className);
    }
    SchedulerConfig d = DEFAULT;
    return new SchedulerConfig(
        integer(json, "num_train_timesteps", d.numTrainTimesteps),
        number(json, "sigma_min", d.sigmaMin),
        number(json, "sigma_max", d.sigmaMax),
        number(json, "sigma_data", d.sigmaData),
        number(json, "s_noise", d.sNoise),
        number(json, "rho", d.rho),
        bool(json, "clip_denoised", d.clipDenoised));
  }

  private static int integer(Map<String, Object> json, String key, int fallback) {
    Object v = json.getOrDefault(key, fallback);
    if (v instanceof Integer i) {
      return i;
    }
    if (v instanceof Long l && l == l.intValue()) {
      return l.intValue();
    }
    throw wrongType(key, "an integer", v);
  }

  private static double number(Map<String, Object> json, String key, double fallback) {
    Object v = json.getOrDefault(key, fallback);
    if (v instanceof Number n) {
      return n.doubleValue();
    }
    throw wrongType(key, "a number", v);
  }

  private static boolean bool(Map<String, Object> json, String key, boolean fallback) {
    Object v = json.getOrDefault(key, fallback);
    if (v instanceof Boolean b) {
      return b;
    }
    throw wrongType(key, "a boolean", v);
  }

  private static IllegalArgumentException wrongType(String key, String expected, Object found) {
    return new IllegalArgumentException(
        "`" + key + "` must be " + expected + ", found " + Json.typeName(found) + " " + found);
  }
}
