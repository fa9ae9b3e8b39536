package io.cm4j.cli;

import io.cm4j.pipeline.ImageBatch;
import io.cm4j.weights.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import picocli.CommandLine.Option;

/**
 * {@code --out FILE.png|DIR} and {@code --out-tensor} of generate and edit, and the writing of
 * both: the two commands check, name and write their outputs alike.
 */
final class PngOutputOptions {
  @Option(names = "--out", paramLabel = "FILE.png|DIR", description = "Where to write PNGs.")
  Path out;

  @Option(names = "--out-tensor", paramLabel = "FILE.safetensors",
      description = "Also (or only) write the float outputs (see the description above).")
  Path outTensor;

  /** Checks, before anything runs, that --out-tensor (if given) can be written. */
  void checkTensorFile() throws UsageException {
    if (outTensor != null) {
      OutputFiles.checkWritableFile("--out-tensor", outTensor);
    }
  }

  /** The PNG files for {@code images} images (see {@link OutputFiles#pngTargets}). */
  OutputFiles.Pngs pngs(String defaultPng, int images) throws UsageException {
    return OutputFiles.pngTargets(out, outTensor, defaultPng, images);
  }

  /**
   * Writes {@code images} to {@code pngs} and, with --out-tensor, the tensors of
   * {@code tensors} (asked for only then), all or nothing; returns the files written.
   */
  List<Path> write(OutputFiles.Pngs pngs, ImageBatch images,
      Supplier<SafetensorsWriter> tensors) throws IOException {
    try (OutputFiles files = new OutputFiles()) {
      files.stagePngs(pngs, pngs.files().isEmpty() ? List.of() : images.toBufferedImages());
      if (outTensor != null) {
        OutputFiles.writeTensors(tensors.get(), files.stage(outTensor), "--out-tensor "
            + outTensor);
      }
      return files.commit();
    }
  }

  /**
   * {@code writer} with the metadata of how the images were made, in the keys both commands
   * write: cm4j.model, cm4j.seed, cm4j.timesteps and, when there are labels, cm4j.class_labels.
   */
  static SafetensorsWriter provenance(SafetensorsWriter writer, String model, long seed,
      float[] timesteps, long[] classLabels) {
    writer.metadata("cm4j.model", model)
        .metadata("cm4j.seed", Long.toString(seed))
        .metadata("cm4j.timesteps", Arrays.toString(timesteps));
    if (classLabels != null) {
      writer.metadata("cm4j.class_labels", Arrays.stream(classLabels)
          .mapToObj(Long::toString).collect(Collectors.joining(",")));
    }
    return writer;
  }
}
