package io.cm4j.cli;

import io.cm4j.Device;
import picocli.CommandLine.Option;

/**
 * {@code --device} of generate and edit: without it, the GPU when one is usable, else the CPU
 * ({@link ModelOpening#openPipeline} picks); edit's synthetic weights stay on the CPU, as its
 * --random-weights says. {@link DeviceOption} defaults to the CPU instead.
 */
final class AutoDeviceOption {
  @Option(names = "--device", paramLabel = "cpu[:threads]|cuda[:i]",
      converter = Converters.DeviceConverter.class,
      description = "Where to run (default: the GPU when one is usable, else the CPU).")
  Device value;
}
