package io.cm4j.weights;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
 * renamed into place only when complete, so a failure leaves no half-written model. An existing
 * OUT is replaced only when asked to, and only when it holds nothing but what this writes (an
 * earlier conversion); OUT may not be, hold or lie inside the input.
 */
public final class WeightsConverter {
  static final String UNET = "unet";
  static final String UNET_CONFIG = "config.json";
  static final String WEIGHTS = "diffusion_pytorch_model.safetensors";
  static final String SCHEDULER = "scheduler";
  static final String SCHEDULER_CONFIG = "scheduler_config.json";
  static final String MODEL_INDEX_FILE = "model_index.json";

  /** The files written in OUT itself, and the folders written in it with the files of each. */
  private static final Set<String> WRITTEN_FILES = Set.of(MODEL_INDEX_FILE);
  private static final Map<String, Set<String>> WRITTEN_FOLDERS = Map.of(
      UNET, Set.of(UNET_CONFIG, WEIGHTS), SCHEDULER, Set.of(SCHEDULER_CONFIG));

  /** Unexpected entries an existing OUT's refusal names; the rest are counted. */
  private static final int NAMED = 3;

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
   * @param overwrite whether an existing, non-empty output directory may be replaced (only
   *     ever one holding nothing but what the converter writes)
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
    // against the input as named: a folder, where the checkpoint knows only its weights file
    checkOutput(input, output, options.overwrite());
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

    Path out = checkOutput(in.path(), output, options.overwrite());
    Path parent = out.getParent();
    Path existing = existingAncestor(parent);
    boolean done = false;
    Path tmp = null;
    try {
      Files.createDirectories(parent);
      tmp = AtomicFile.createBeside(out, ".tmp", true); // default permissions, not 0700
      Path unet = Files.createDirectories(tmp.resolve(UNET));
      Files.writeString(unet.resolve(UNET_CONFIG), unetConfig, StandardCharsets.UTF_8);
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
      w.write(unet.resolve(WEIGHTS));
      if (schedulerConfig != null) {
        Path sched = Files.createDirectories(tmp.resolve(SCHEDULER));
        Files.writeString(sched.resolve(SCHEDULER_CONFIG), schedulerConfig,
            StandardCharsets.UTF_8);
        Files.writeString(tmp.resolve(MODEL_INDEX_FILE), MODEL_INDEX, StandardCharsets.UTF_8);
      }
      publish(tmp, out, options.overwrite());
      done = true;
      return new Result(out, out.resolve(UNET).resolve(WEIGHTS), in.names().size(), bytes,
          schedulerConfig != null);
    } catch (CheckpointException e) {
      throw e; // the input's fault, or OUT changed while writing: already says so
    } catch (IOException e) {
      // a disk full, a folder gone: said of OUT, not of the staging file it happened to
      throw new OutputException(out, "cannot write: " + CheckpointException.reason(e), e);
    } finally {
      if (tmp != null && Files.exists(tmp)) {
        deleteTree(tmp);
      }
      if (!done) {
        removeEmptyFolders(parent, existing);
      }
    }
  }

  /**
   * Checks, before anything is written, that a model may be written at {@code output} from
   * {@code input} (null when there is no input file): that OUT is not the input, does not hold it
   * and is not inside it; that the nearest existing folder above it is a writable folder; and
   * that OUT is new, an empty folder, or (with {@code overwrite}) a folder holding nothing but
   * what {@link #convert} writes. Returns OUT as an absolute path.
   *
   * @throws CheckpointException naming OUT and what is wrong
   */
  public static Path checkOutput(Path input, Path output, boolean overwrite)
      throws CheckpointException {
    Path out = output.toAbsolutePath().normalize();
    Path parent = out.getParent();
    if (parent == null) {
      throw new CheckpointException(out, "cannot write a model at the file system root");
    }
    if (input != null) {
      checkApart(input, out);
    }
    Path existing = existingAncestor(parent);
    if (!Files.isDirectory(existing)) {
      throw new CheckpointException(out, existing + " is not a folder");
    }
    if (!Files.isWritable(existing)) {
      throw new CheckpointException(out, "folder " + existing + " is not writable");
    }
    checkExisting(out, overwrite);
    return out;
  }

  /** Refuses an OUT that is the input, holds it, or lies inside it, as named or linked. */
  private static void checkApart(Path input, Path out) throws CheckpointException {
    Path in = input.toAbsolutePath().normalize();
    for (Path[] pair : List.of(new Path[] {in, out}, new Path[] {realPath(in), realPath(out)})) {
      if (pair[0].equals(pair[1])) {
        throw new CheckpointException(out, "is the input itself; choose another folder to "
            + "write the model in");
      }
      if (pair[0].startsWith(pair[1])) {
        throw new CheckpointException(out, "holds the input " + input + ", which writing the "
            + "model there would replace; choose a folder apart from it");
      }
      if (pair[1].startsWith(pair[0])) {
        throw new CheckpointException(out, "is inside the input " + input + "; choose a "
            + "folder apart from it");
      }
    }
  }

  /**
   * Refuses an existing OUT that may not be replaced: a file, a non-empty folder without
   * {@code overwrite}, or one holding anything convert does not write (the user's files would go
   * with it).
   */
  private static void checkExisting(Path out, boolean overwrite) throws CheckpointException {
    if (!Files.exists(out)) {
      return;
    }
    if (!Files.isDirectory(out)) {
      throw new CheckpointException(out, "is a file, not a folder; choose a folder to write "
          + "the model in");
    }
    boolean empty = CheckpointException.reading(out, () -> list(out).isEmpty());
    if (empty) {
      return;
    }
    if (!overwrite) {
      throw new CheckpointException(out, "already exists; choose a new directory or overwrite");
    }
    List<String> foreign = CheckpointException.reading(out, () -> foreignEntries(out));
    if (!foreign.isEmpty()) {
      String named = String.join(", ", foreign.subList(0, Math.min(NAMED, foreign.size())))
          + (foreign.size() > NAMED ? " and " + (foreign.size() - NAMED) + " more" : "");
      throw new CheckpointException(out, "not replaced: it holds what convert does not write ("
          + named + "); overwrite replaces only a model folder convert wrote");
    }
  }

  /** What in the folder {@code out} convert does not write, as paths relative to it. */
  private static List<String> foreignEntries(Path out) throws IOException {
    List<String> foreign = new ArrayList<>();
    for (Path p : list(out)) {
      String name = p.getFileName().toString();
      Set<String> files = WRITTEN_FOLDERS.get(name);
      if (files != null && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
        for (Path f : list(p)) {
          String fileName = f.getFileName().toString();
          if (!files.contains(fileName) || !Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
            foreign.add(name + "/" + fileName);
          }
        }
      } else if (!WRITTEN_FILES.contains(name)
          || !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
        foreign.add(name);
      }
    }
    return foreign;
  }

  /** The entries of a folder, sorted by name. */
  private static List<Path> list(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.sorted().toList();
    }
  }

  /** {@code abs} with every link in its longest existing prefix resolved. */
  private static Path realPath(Path abs) {
    Path p = existingAncestor(abs);
    try {
      return p.toRealPath().resolve(p.relativize(abs));
    } catch (IOException e) {
      return abs; // as named: the check above already compared that
    }
  }

  /** {@code path}, or its nearest ancestor that exists. */
  private static Path existingAncestor(Path dir) {
    Path p = dir;
    while (p.getParent() != null && !Files.exists(p)) {
      p = p.getParent();
    }
    return p;
  }

  /** Removes the folders from {@code dir} up to (not including) {@code keep} that are empty. */
  private static void removeEmptyFolders(Path dir, Path keep) {
    for (Path p = dir; p != null && !p.equals(keep) && p.startsWith(keep); p = p.getParent()) {
      try {
        Files.deleteIfExists(p);
      } catch (IOException e) {
        return; // not empty, or not ours to remove: left as it is
      }
    }
  }


  /** Renames the finished directory into place, replacing (then deleting) any old one. */
  private static void publish(Path tmp, Path out, boolean overwrite) throws IOException {
    checkExisting(out, overwrite); // again: OUT may have changed while the model was written
    Path old = null;
    if (Files.exists(out)) {
      old = AtomicFile.createBeside(out, ".old", true);
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

  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}
