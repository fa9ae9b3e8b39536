package io.cm4j.cli;

import io.cm4j.Device;
import picocli.CommandLine.Option;

/**
 * {@code --device}, defaulting to the CPU: serve and unet share it so its wording and parsing
 * stay one. ({@code generate} declares its own: without the option it picks the GPU when one is
 * usable, which its help says.)
 */
final class DeviceOption {
  @Option(names = "--device", paramLabel = "cpu[:threads]|cuda[:i]", defaultValue = "cpu",
      converter = Converters.DeviceConverter.class,
      description = "Where to run (default: ${DEFAULT-VALUE}).")
  Device value;
}
