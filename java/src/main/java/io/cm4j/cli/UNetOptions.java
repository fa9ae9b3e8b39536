package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.WeightSource;
import io.cm4j.weights.CheckpointException;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The UNet of {@code unet} and {@code bench}: {@code --model}, or {@code --config} with
 * {@code --random-weights}, declared once so both accept, check and word them alike.
 */
final class UNetOptions {
  @Option(names = "--model", paramLabel = "DIR|FILE",
      description = "A diffusers pipeline or unet folder, a weights file (safetensors, torch "
          + ".bin, Paddle .pdparams) with config.json beside it, or an original OpenAI .pt "
          + "checkpoint.")
  Path model;

  @Option(names = "--config", paramLabel = "config.json",
      description = "A diffusers UNet2DModel config: for --random-weights, or instead of the "
          + "--model's own.")
  Path config;

  @Option(names = "--random-weights", paramLabel = "SEED",
      description = "Use synth-v1 weights for this seed instead of a checkpoint.")
  Long seed;

  /** Checks the options form one of the two accepted combinations; names the one used. */
  String check() throws UsageException {
    if (model != null) {
      if (seed != null) {
        throw new UsageException("--model cannot be combined with --random-weights");
      }
      return "--model";
    }
    if (config == null && seed == null) {
      throw new UsageException("expected --model DIR|FILE, or --config config.json with "
          + "--random-weights SEED");
    }
    if (seed == null) {
      throw new UsageException("--config needs --random-weights SEED (for weights from a file, "
          + "use --model)");
    }
    if (config == null) {
      throw new UsageException("--random-weights needs --config config.json");
    }
    return "--config";
  }

  /**
   * The UNet on {@code on} in {@code type}. Refusals the user can fix, and unreadable or
   * malformed model files, are usage errors naming the option at fault.
   */
  UNet open(Device on, Precision type) throws IOException, Cm4jException, UsageException {
    String option = check();
    try {
      return ModelOpening.open(() -> model != null
          ? UNet.open(model, config, on, type)
          : UNet.create(config, WeightSource.synthV1(seed), on, type), option, on, type);
    } catch (CheckpointException e) {
      throw new UsageException(ModelOpening.optionFor(e, config, option) + " " + e.getMessage(),
          e);
    }
  }
}
