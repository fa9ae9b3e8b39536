package io.cm4j.cli;

import io.cm4j.pipeline.TorchGenerator;
import io.cm4j.weights.SafetensorsWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j noise}: successive {@code torch.randn(shape)} draws of a generator seeded like
 * {@code torch.manual_seed(seed)}, the latents and step noise {@code generate} uses.
 */
@Command(
    name = "noise",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Writes seeded torch.randn draws (the latents and noise of generate).",
        "K successive torch.randn(shape) draws from a generator seeded like "
            + "torch.manual_seed(S), as float32 tensors named 0, 1, ... (the metadata records "
            + "seed and shape)."})
final class NoiseCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--seed", required = true, paramLabel = "S", description = "The seed.")
  long seed;

  @Option(names = "--shape", required = true, paramLabel = "D,...", split = ",",
      description = "Shape of each draw, e.g. 1,3,64,64.")
  long[] shape;

  @Option(names = "--count", paramLabel = "K", defaultValue = "1",
      description = "Number of draws (default: ${DEFAULT-VALUE}).")
  int count;

  @Option(names = "--output", required = true, paramLabel = "OUT.safetensors",
      description = "Where to write the draws (atomically).")
  Path output;

  @Override
  public Integer call() throws Exception {
    String shapeText = Arrays.stream(shape).mapToObj(Long::toString)
        .collect(Collectors.joining(","));
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new UsageException("--shape " + shapeText + ": negative dimension " + d);
      }
      // Saturated, not overflowed (a zero dimension after it still makes the product 0).
      numel = d != 0 && numel > Long.MAX_VALUE / d ? Long.MAX_VALUE : numel * d;
    }
    if (numel > Integer.MAX_VALUE - 8) {
      throw new UsageException("--shape " + shapeText + ": " + (numel == Long.MAX_VALUE
          ? "over 2^63" : Long.toString(numel)) + " elements, more than one draw can hold");
    }
    UsageException.checkAtLeastOne("--count", count);
    // Every draw is held until the file is written: refused up front where they cannot be.
    long bytes = 4L * numel * count;
    long heap = Runtime.getRuntime().maxMemory();
    if (bytes > heap / 2) {
      throw new UsageException(String.format(Locale.ROOT, "--count %d --shape %s: %d draws of "
          + "%d floats are %.1f MB, more than half the JVM's heap (%.0f MB; java -Xmx)", count,
          shapeText, count, numel, bytes / 1e6, heap / 1e6));
    }
    OutputFiles.checkWritableFile("--output", output);

    TorchGenerator generator = new TorchGenerator(seed);
    SafetensorsWriter writer = new SafetensorsWriter()
        .metadata("seed", Long.toString(seed))
        .metadata("shape", shapeText);
    for (int k = 0; k < count; k++) {
      writer.addFloats(Integer.toString(k), shape, generator.randn(shape));
    }
    OutputFiles.writeTensors(writer, output, "--output " + output);
    spec.commandLine().getOut().printf("wrote %s: %d draw%s of [%s] from seed %d%n", output, count,
        count == 1 ? "" : "s", shapeText, seed);
    spec.commandLine().getOut().flush();
    return 0;
  }
}
