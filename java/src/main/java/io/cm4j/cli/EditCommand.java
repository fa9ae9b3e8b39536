package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.UNet;
import io.cm4j.edit.EditArgumentException;
import io.cm4j.edit.EditImages;
import io.cm4j.edit.EditInputs;
import io.cm4j.edit.EditRequest;
import io.cm4j.edit.EditResult;
import io.cm4j.edit.EditTask;
import io.cm4j.edit.Editing;
import io.cm4j.edit.ImageEditor;
import io.cm4j.hub.HubException;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.SafetensorsWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j edit TASK}: the paper's zero-shot edits ({@link ImageEditor}) from PNGs or from
 * exact tensors ({@code --inputs}). Every input is checked before the loop runs; the output
 * files appear together, complete, or not at all.
 */
@Command(
    name = "edit",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Edits images with a consistency model, with no retraining (Song et al. 2023, "
            + "Algorithm 4): inpaint, colorize, superres, sdedit, denoise, interpolate.",
        "Inputs: --image PNGs (8-bit RGB or gray, the model's size; --resize center-crops and "
            + "scales others; superres also takes a low-resolution image whose size divides the "
            + "model's), --mask PNGs for inpaint (WHITE = generate, BLACK = keep), or --inputs "
            + "with the tensors image, mask_keep, class_labels, seed, timesteps, sigma, alphas "
            + "(options given beside it take precedence).",
        "Output: --out FILE.png (FILE-0.png, ... for a batch) or --out DIR (DIR/0000.png, ...); "
            + "--out-tensor writes `out` [B,3,H,W] in [-1,1] and `image` [B,H,W,3] in [0,1]. "
            + "Without either, TASK.png in the current folder."})
final class EditCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @ParentCommand Main main;

  @Parameters(index = "0", paramLabel = "TASK",
      description = "inpaint, colorize, superres, sdedit, denoise or interpolate.")
  String taskName;

  @Mixin HubModelOptions model;

  @Option(names = "--config", paramLabel = "config.json",
      description = "A diffusers UNet config: for --random-weights, or instead of the model's.")
  Path unetConfig;

  @Option(names = "--random-weights", paramLabel = "SEED",
      description = "Run --config with synth-v1 weights of this seed and diffusers' default "
          + "scheduler (no download; for benchmarks), on the CPU unless --device says otherwise.")
  Long randomWeights;

  @Option(names = "--image", paramLabel = "FILE.png|DIR", split = ",",
      description = "The images to edit (sdedit: the strokes), or a folder of PNGs (in name "
          + "order).")
  List<Path> images;

  @Option(names = "--mask", paramLabel = "FILE.png|DIR", split = ",",
      description = "inpaint: one mask per image, WHITE = generate, BLACK = keep.")
  List<Path> masks;

  @Option(names = "--resize",
      description = "Center-crop and area-average images (and masks) of another size.")
  boolean resize;

  @Option(names = "--inputs", paramLabel = "CASE.safetensors",
      description = "Exact float inputs instead of PNGs (the golden editing files' layout).")
  Path inputs;

  @Option(names = "--class", paramLabel = "N|NAME", arity = "1..*", split = ",",
      converter = Converters.ClassLabelConverter.class,
      description = "Class label(s), as numbers or ImageNet class names (goldfish, "
          + "\"golden retriever\"): one for every image, or one per image (default: drawn from "
          + "the seed).")
  List<Long> classes;

  @Option(names = "--seed", paramLabel = "S",
      description = "Seed of the torch-compatible generator all noise comes from (default: 0).")
  Long seed;

  @ArgGroup(exclusive = true, multiplicity = "0..1")
  StepOptions steps;

  @Option(names = "--sigma", paramLabel = "X",
      description = "denoise: the noise level, in [sigma_min, sigma_max].")
  Float sigma;

  @Option(names = "--noisy",
      description = "denoise: the images already carry noise of --sigma (none is added).")
  boolean noisy;

  @Option(names = "--alphas", paramLabel = "A", split = ",",
      description = "interpolate: positions in [0, 1] between two latents drawn from the seed.")
  double[] alphas;

  @Option(names = "--patch", paramLabel = "P",
      description = "superres from a full-size image: the patch size kept (default: 8).")
  Integer patch;

  @Mixin AutoDeviceOption device;

  @Mixin DtypeOption dtype;

  @Mixin PngOutputOptions output;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    EditTask task;
    try {
      task = EditTask.fromName(taskName);
    } catch (IllegalArgumentException e) {
      throw new UsageException("TASK " + e.getMessage(), e);
    }
    checkOptions(task);
    output.checkTensorFile();
    String what = randomWeights != null ? unetConfig + " (synth-v1 seed " + randomWeights + ")"
        : model.model;
    try (ConsistencyModelPipeline pipeline = openPipeline(err)) {
      UNet unet = pipeline.unet();
      EditRequest request = request(task, unet.sampleSize());
      ImageEditor editor = ImageEditor.of(pipeline);
      Editing editing;
      try {
        editing = editor.start(request);
      } catch (IllegalArgumentException e) {
        throw new UsageException(withOption(e), e);
      }
      int batch = editing.batchSize();
      OutputFiles.Pngs pngs = output.pngs(task.cliName() + ".png", batch);
      err.printf("edit: %s with %s on %s %s: %d image%s, %s, timesteps %s, seed %d%n",
          task.cliName(), what, unet.device(), dtype.value, batch, batch == 1 ? "" : "s",
          labels(editing.classLabels()), Arrays.toString(editing.timesteps()), request.seed());
      err.flush();
      long start = System.nanoTime();
      editor.runOnDevice(List.of(editing));
      EditResult result = editing.result();
      int n = editing.numSteps();
      err.printf(Locale.ROOT, "edit: %d step%s done in %.3f s%n", n, n == 1 ? "" : "s",
          (System.nanoTime() - start) / 1e9);
      err.flush();
      PrintWriter stdout = spec.commandLine().getOut();
      for (Path written : output.write(pngs, result, () -> tensors(result, what))) {
        stdout.println("wrote " + written);
      }
      stdout.flush();
    }
    return 0;
  }

  /** What the task cannot take or must have, before anything is opened. */
  private void checkOptions(EditTask task) throws UsageException {
    if (inputs != null && (images != null || masks != null)) {
      throw new UsageException("--inputs: takes the place of --image and --mask; give one or "
          + "the other");
    }
    if (!task.takesImage() && images != null) {
      throw new UsageException("--image: interpolate takes no image (it starts from noise)");
    }
    if (task.takesImage() && inputs == null && images == null) {
      throw new UsageException("--image: " + task.cliName() + " needs an image (or --inputs)");
    }
    if (masks != null && task != EditTask.INPAINT) {
      throw new UsageException("--mask: only inpaint takes a mask");
    }
    if (task == EditTask.INPAINT && images != null && masks == null) {
      throw new UsageException("--mask: inpaint needs one mask per --image (WHITE = generate)");
    }
    if (noisy && task != EditTask.DENOISE) {
      throw new UsageException("--noisy: only denoise takes it");
    }
    if (randomWeights != null && unetConfig == null) {
      throw new UsageException("--random-weights: needs --config config.json");
    }
  }

  /** The request from --inputs and the PNGs, with the options given taking precedence. */
  private EditRequest request(EditTask task, int size) throws IOException, UsageException {
    EditRequest.Builder b;
    try {
      b = inputs != null ? EditInputs.read(inputs, task) : EditRequest.builder(task);
    } catch (CheckpointException e) {
      throw new UsageException("--inputs " + e.getMessage(), e);
    }
    if (images != null) {
      List<Path> files = pngFiles("--image", images);
      try {
        b.image(EditImages.readImages(files, size, resize, task == EditTask.SUPERRES));
        if (masks != null) {
          List<Path> maskFiles = pngFiles("--mask", masks);
          if (maskFiles.size() != files.size()) {
            throw new UsageException("--mask: expected one mask per image (" + files.size()
                + "), found " + maskFiles.size());
          }
          try {
            b.maskKeep(EditImages.readMasks(maskFiles, size, resize));
          } catch (IllegalArgumentException e) {
            throw new UsageException("--mask " + e.getMessage(), e);
          }
        }
      } catch (IllegalArgumentException e) {
        throw new UsageException("--image " + e.getMessage(), e);
      }
    }
    if (seed != null || inputs == null) {
      b.seed(seed == null ? 0 : seed);
    }
    if (steps != null) {
      b.timesteps(steps.timesteps).numInferenceSteps(steps.steps);
    }
    if (sigma != null) {
      b.sigma(sigma);
    }
    if (noisy) {
      b.addNoise(false);
    }
    if (alphas != null) {
      b.alphas(alphas);
    }
    if (patch != null) {
      b.patch(patch);
    }
    EditRequest partial = b.build();
    if (classes != null) {
      int batch = partial.image() != null ? (int) partial.image().dim(0)
          : partial.alphas() == null ? 1 : partial.alphas().length;
      long[] labels = classes.size() == 1
          ? Stream.generate(() -> classes.get(0)).limit(batch).mapToLong(Long::longValue)
              .toArray()
          : classes.stream().mapToLong(Long::longValue).toArray();
      b.classLabels(labels);
    }
    return b.build();
  }

  /** The files of a list option: the PNGs of a single folder in name order, or the files. */
  private static List<Path> pngFiles(String option, List<Path> given) throws IOException,
      UsageException {
    if (given.size() != 1 || !Files.isDirectory(given.get(0))) {
      return given;
    }
    try (Stream<Path> s = Files.list(given.get(0))) {
      List<Path> files = s.filter(p -> p.getFileName().toString().toLowerCase(Locale.ROOT)
          .endsWith(".png")).sorted().collect(Collectors.toList());
      if (files.isEmpty()) {
        throw new UsageException(option + " " + given.get(0) + ": no .png file in the folder");
      }
      return files;
    }
  }

  /** The option each {@link EditArgumentException#argument()} comes from. */
  private static final Map<String, String> OPTIONS = Map.of("image", "--image",
      "mask_keep", "--mask", "sigma", "--sigma", "timesteps", "--timesteps", "steps", "--steps",
      "alphas", "--alphas", "class_labels", "--class", "patch", "--patch", "latents", "--inputs");

  /**
   * An ImageEditor refusal told as the option it came from: "--sigma: ...", or
   * "--inputs FILE: sigma: ..." when the case file gave the value.
   */
  private String withOption(IllegalArgumentException e) {
    if (!(e instanceof EditArgumentException a) || !OPTIONS.containsKey(a.argument())) {
      return e.getMessage();
    }
    String option = OPTIONS.get(a.argument());
    boolean fromFile = inputs != null && (option.equals("--inputs")
        || !spec.commandLine().getParseResult().hasMatchedOption(option));
    return fromFile ? "--inputs " + inputs + ": " + e.getMessage()
        : option + e.getMessage().substring(a.argument().length());
  }

  private ConsistencyModelPipeline openPipeline(PrintWriter err)
      throws IOException, Cm4jException, UsageException, HubException {
    if (randomWeights == null) {
      Path modelPath = model.resolve(main);
      return ModelOpening.openPipeline("edit", modelPath, unetConfig, device.value, dtype.value,
          err);
    }
    Device on = device.value == null ? Device.CPU : device.value;
    return ModelOpening.openSynthPipeline(unetConfig, randomWeights, on, dtype.value);
  }

  private String labels(long[] labels) {
    if (labels == null) {
      return "unconditional";
    }
    return (labels.length == 1 ? "class " : "classes ") + Arrays.stream(labels)
        .mapToObj(Long::toString).collect(Collectors.joining(","))
        + (classes == null && inputs == null ? " (drawn from the seed)" : "");
  }

  /**
   * What --out-tensor holds: {@code out} [B,3,H,W] in [-1,1], {@code image} [B,H,W,3] in [0,1],
   * and how they were made.
   */
  private static SafetensorsWriter tensors(EditResult result, String what) {
    return PngOutputOptions.provenance(new SafetensorsWriter()
        .metadata("cm4j.task", result.task().cliName()), what, result.seed(),
        result.timesteps(), result.classLabels())
        .addFloats("out", result.out().shape(), result.out().toArray())
        .addFloats("image", result.images().shape(), result.images().toArray());
  }
}
