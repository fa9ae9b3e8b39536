package io.cm4j.cli;

import io.cm4j.Precision;
import picocli.CommandLine.Option;

/**
 * {@code --dtype} of the commands that run the model (generate, serve, unet), declared once so
 * they accept and describe it alike. ({@code weights convert --dtype} differs: no default, it
 * keeps each tensor's stored type.)
 */
final class DtypeOption {
  @Option(names = "--dtype", paramLabel = "fp32|fp16|bf16", defaultValue = "fp32",
      converter = Converters.PrecisionConverter.class,
      description = "Storage/compute type (default: ${DEFAULT-VALUE}). The CPU runs fp32 or bf16 "
          + "(bf16 is several times faster on CPUs with AMX, slower without); a GPU runs all three.")
  Precision value;
}
