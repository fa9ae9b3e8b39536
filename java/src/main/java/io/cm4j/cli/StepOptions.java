package io.cm4j.cli;

import io.cm4j.pipeline.CMStochasticIterativeScheduler;
import java.util.Arrays;
import java.util.stream.Collectors;
import picocli.CommandLine.Option;

/**
 * {@code --steps N | --timesteps T,...}, one or the other (picocli refuses both), as diffusers'
 * {@code num_inference_steps} and {@code timesteps}.
 */
final class StepOptions {
  @Option(names = "--steps", paramLabel = "N", required = true,
      description = "Number of sampling steps (num_inference_steps), evenly spaced.")
  Integer steps;

  @Option(names = "--timesteps", paramLabel = "T", split = ",", required = true,
      description = "Custom training timesteps, strictly descending, each "
          + "in [0, num_train_timesteps) (e.g. 22,0).")
  int[] timesteps;

  /**
   * Sets the scheduler's timesteps from these options (null options: one step), turning the
   * scheduler's refusal into a usage error that names the option.
   */
  static void apply(StepOptions options, CMStochasticIterativeScheduler scheduler)
      throws UsageException {
    Integer steps = options == null ? Integer.valueOf(1) : options.steps;
    int[] timesteps = options == null ? null : options.timesteps;
    try {
      scheduler.setTimesteps(steps, timesteps);
    } catch (IllegalArgumentException e) {
      throw new UsageException(describe(options) + ": " + e.getMessage(), e);
    }
  }

  /** The option as given: {@code --steps 4} or {@code --timesteps 22,0}. */
  static String describe(StepOptions options) {
    if (options == null) {
      return "--steps 1 (the default)";
    }
    return options.timesteps != null
        ? "--timesteps " + Arrays.stream(options.timesteps).mapToObj(Integer::toString)
            .collect(Collectors.joining(","))
        : "--steps " + options.steps;
  }
}
