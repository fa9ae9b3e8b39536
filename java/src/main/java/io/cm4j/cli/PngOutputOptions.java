package io.cm4j.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --out FILE.png|DIR} and {@code --out-tensor} of generate and edit. */
final class PngOutputOptions {
  @Option(names = "--out", paramLabel = "FILE.png|DIR", description = "Where to write PNGs.")
  Path out;

  @Option(names = "--out-tensor", paramLabel = "FILE.safetensors",
      description = "Also (or only) write the float outputs (see the description above).")
  Path outTensor;
}
