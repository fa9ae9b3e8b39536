package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.ErrorCode;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.WeightSource;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.weights.CheckpointException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;

/**
 * Opening a model (a pipeline or a UNet) for generate, edit, serve, unet and bench. The engine's
 * refusals that the user can fix become usage errors (exit 2) naming the option at fault, worded
 * alike by every command.
 */
final class ModelOpening {
  private ModelOpening() {}

  /** Opens a model; may throw whatever the engine throws. */
  @FunctionalInterface
  interface Opener<T> {
    T open() throws IOException, Cm4jException;
  }

  /**
   * What {@code opener} opens. A refusal of the device, the dtype or the model becomes a usage
   * error naming --device, --dtype or {@code modelOption}; any other failure is thrown as it is.
   * A {@link CheckpointException} passes through: the caller knows which files it may concern.
   */
  static <T> T open(Opener<T> opener, String modelOption, Device device, Precision dtype)
      throws IOException, Cm4jException, UsageException {
    try {
      return opener.open();
    } catch (Cm4jException e) {
      switch (e.code()) {
        case DEVICE:
          throw new UsageException("--device " + device + ": " + e.getMessage(), e);
        case UNSUPPORTED:
        case INVALID_ARGUMENT:
        case WEIGHTS:
          // the message starts with the file it concerns: "--model " + "/x/config.json: ..."
          throw new UsageException(e.getMessage().startsWith("dtype ")
              ? "--dtype " + dtype + ": " + e.getMessage()
              : modelOption + " " + e.getMessage(), e);
        default:
          throw e;
      }
    }
  }

  /** The option a checkpoint problem concerns: --config if it names that file, else the model's. */
  static String optionFor(CheckpointException e, Path config, String modelOption) {
    return config != null && config.equals(e.file()) ? "--config" : modelOption;
  }

  /**
   * The pipeline on {@code device}, or without one on the GPU when one is usable (falling back
   * to the CPU when the GPU refuses), else on the CPU; says which on stderr, each line
   * starting with {@code command}.
   */
  static ConsistencyModelPipeline openPipeline(String command, Path modelPath, Path unetConfig,
      Device device, Precision dtype, PrintWriter err)
      throws IOException, Cm4jException, UsageException {
    if (ConsistencyModelPipeline.shippedSchedulerConfig(modelPath).isPresent()) {
      err.println(command + ": using the scheduler config shipped for "
          + modelPath.getFileName());
    } else if (ConsistencyModelPipeline.findSchedulerConfig(modelPath).isEmpty()) {
      err.println(command + ": no scheduler/scheduler_config.json beside " + modelPath
          + ": using diffusers' defaults (" + SchedulerConfig.DEFAULT + ")");
    }
    if (device != null) {
      return openPipeline(modelPath, unetConfig, device, dtype);
    }
    int gpus = UNet.cudaDeviceCount();
    if (gpus > 0) {
      try {
        ConsistencyModelPipeline p = openPipeline(modelPath, unetConfig, Device.parse("cuda"),
            dtype);
        err.println(command + ": running on cuda (" + gpus + " CUDA device"
            + (gpus == 1 ? "" : "s") + " usable; --device cpu for the CPU)");
        return p;
      } catch (UsageException e) {
        if (!(e.getCause() instanceof Cm4jException c) || c.code() != ErrorCode.DEVICE) {
          throw e;
        }
        err.println(command + ": the GPU cannot run this model (" + c.getMessage()
            + "); running on cpu");
      }
    } else {
      err.println(command + ": no usable CUDA device; running on cpu (--device cuda says why)");
    }
    err.flush();
    return openPipeline(modelPath, unetConfig, Device.CPU, dtype);
  }

  /**
   * A pipeline of synth-v1 weights of {@code seed} on {@code config} with diffusers' default
   * scheduler: the real-size model with no download. Refusals name --config; a
   * {@link CheckpointException} passes through, as from {@link #open}.
   */
  static ConsistencyModelPipeline openSynthPipeline(Path config, long seed, Device on,
      Precision dtype) throws IOException, Cm4jException, UsageException {
    UNet unet = open(() -> UNet.create(config, WeightSource.synthV1(seed), on, dtype),
        "--config", on, dtype);
    try {
      return new ConsistencyModelPipeline(unet, SchedulerConfig.DEFAULT);
    } catch (IllegalArgumentException e) { // the config does not fit the scheduler
      unet.close();
      throw new UsageException("--config " + config + ": " + e.getMessage(), e);
    }
  }

  private static ConsistencyModelPipeline openPipeline(Path modelPath, Path unetConfig,
      Device on, Precision dtype) throws IOException, Cm4jException, UsageException {
    try {
      return open(() -> ConsistencyModelPipeline.open(modelPath, unetConfig, on, dtype),
          "--model", on, dtype);
    } catch (CheckpointException e) {
      throw new UsageException(optionFor(e, unetConfig, "--model") + " " + e.getMessage(), e);
    }
  }
}
