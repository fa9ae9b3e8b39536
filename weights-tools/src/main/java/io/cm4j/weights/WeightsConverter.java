package io.cm4j.weights;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Writes any {@link Checkpoint} as a diffusers model directory:
 * <pre>
 *   OUT/unet/config.json
 *   OUT/unet/diffusion_pytorch_model.safetensors
 *   OUT/scheduler/scheduler_config.json   (when the scheduler config is known)
 *   OUT/model_index.json                  (likewise: a ConsistencyModelPipeline)
 * </pre>
 * optionally converting the tensors to another float type (fp16 keeps the default file name;
 * the dtype is in the file). The directory is built beside OUT under a temporary name and
 * renamed into place only when complete, so a failure leaves no half-written model; an existing
 * OUT is replaced only when asked to.
 */
public final class WeightsConverter {
  static final String MODEL_INDEX = "{\n"
      + "  \"_class_name\": \"ConsistencyModelPipeline\",\n"
      + "  \"_diffusers_version\": \"0.25.0\",\n"
      + "  \"scheduler\": [\n    \"diffusers\",\n    \"CMStochasticIterativeScheduler\"\n  ],\n"
      + "  \"unet\": [\n    \"diffusers\",\n    \"UNet2DModel\"\n  ]\n"
      + "}\n";

  /**
   * What to write.
   *
   * @param dtype F32, F16 or BF16 to convert every tensor to, or null to keep each as stored
   * @param unetConfig a UNet config file to use instead of the checkpoint's, or null
   * @param overwrite whether an existing, non-empty output directory may be replaced
   */
  public record Options(DType dtype, Path unetConfig, boolean overwrite) {
    public Options {
      if (dtype != null && dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
        throw new IllegalArgumentException("output dtype must be F32, F16 or BF16, not " + dtype);
      }
    }

    /** Keep dtypes, use the checkpoint's config, refuse to replace a directory. */
    public static Options defaults() {
      return new Options(null, null, false);
    }
  }

  /** What was written. */
  public record Result(Path directory, Path weights, int tensors, long bytes,
      boolean schedulerWritten) {}

  private WeightsConverter() {}

  /** Opens {@code input} (file or directory, any format), converts it, and closes it. */
  public static Result convert(Path input, Path output, Options options) throws IOException {
    try (Checkpoint c = Checkpoints.open(input, options.unetConfig())) {
      return convert(c, output, options);
    }
  }

  /** Writes an open checkpoint as a diffusers directory at {@code output}. */
  public static Result convert(Checkpoint in, Path output, Options options) throws IOException {
    String unetConfig = options.unetConfig() != null ? Checkpoints.read(options.unetConfig())
        : in.matchingConfig().orElseThrow(() -> new CheckpointException(in.path(),
            "no UNet config is known for these weights (no config.json beside them); "
            + "give one to write a complete model"));
    String schedulerConfig = in.schedulerConfig().orElse(null);

    Path out = output.toAbsolutePath().normalize();
    Path parent = out.getParent();
    if (parent == null) {
      throw new IOException("cannot write a model at the file system root: " + out);
    }
    Files.createDirectories(parent);
    if (Files.exists(out) && !options.overwrite() && !isEmptyDirectory(out)) {
      throw new CheckpointException(out, "already exists; choose a new directory or overwrite");
    }
    Path tmp = Files.createTempDirectory(parent, "." + out.getFileName() + ".tmp-");
    try {
      Path unet = Files.createDirectories(tmp.resolve("unet"));
      Files.writeString(unet.resolve("config.json"), unetConfig, StandardCharsets.UTF_8);
      SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
      long bytes = 0;
      for (String name : in.names()) {
        // Each tensor is read (and converted) only when its turn to be written comes, so only
        // one tensor's copy is alive at a time.
        TensorInfo t = in.info(name);
        DType to = options.dtype() == null ? t.dtype() : options.dtype();
        w.addLazy(name, to, t.shape(), () -> {
          TensorEntry e = in.get(name);
          return TensorOps.convert(e.data(), e.dtype(), to);
        });
        bytes += t.numel() * to.size();
      }
      w.write(unet.resolve("diffusion_pytorch_model.safetensors"));
      if (schedulerConfig != null) {
        Path sched = Files.createDirectories(tmp.resolve("scheduler"));
        Files.writeString(sched.resolve("scheduler_config.json"), schedulerConfig,
            StandardCharsets.UTF_8);
        Files.writeString(tmp.resolve("model_index.json"), MODEL_INDEX, StandardCharsets.UTF_8);
      }
      publish(tmp, out);
      return new Result(out, out.resolve("unet").resolve("diffusion_pytorch_model.safetensors"),
          in.names().size(), bytes, schedulerConfig != null);
    } finally {
      if (Files.exists(tmp)) {
        deleteTree(tmp);
      }
    }
  }

  /** Renames the finished directory into place, replacing (then deleting) any old one. */
  private static void publish(Path tmp, Path out) throws IOException {
    Path old = null;
    if (Files.exists(out)) {
      old = Files.createTempDirectory(out.getParent(), "." + out.getFileName() + ".old-");
      Files.delete(old);
      move(out, old);
    }
    try {
      move(tmp, out);
    } catch (IOException e) {
      if (old != null) {
        move(old, out); // put the previous model back
      }
      throw e;
    }
    if (old != null) {
      deleteTree(old);
    }
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to);
    }
  }

  private static boolean isEmptyDirectory(Path p) throws IOException {
    if (!Files.isDirectory(p)) {
      return false;
    }
    try (DirectoryStream<Path> s = Files.newDirectoryStream(p)) {
      return !s.iterator().hasNext();
    }
  }

  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}
