package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.Precision;
import io.cm4j.weights.CheckpointException;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Opening a model (a pipeline or a UNet) for generate, serve and unet. The engine's refusals that
 * the user can fix become usage errors (exit 2) naming the option at fault, worded alike by all
 * three commands.
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
}
