package io.cm4j.cli;

import io.cm4j.UNet;
import io.cm4j.pipeline.CMStochasticIterativeScheduler;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.serve.ImageNetClasses;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.SafetensorsWriter;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j generate}: images from a consistency model, as diffusers'
 * {@code ConsistencyModelPipeline(..., generator=torch.manual_seed(seed))} makes them.
 *
 * <p>Progress and choices (device, seed, labels) go to stderr; stdout gets one
 * {@code wrote PATH} line per file written. Every argument is checked before the model runs,
 * and the output files appear together, complete, or not at all.
 */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Generates images with a consistency model (diffusers' ConsistencyModelPipeline).",
        "The same --seed and arguments give the same images as diffusers with "
            + "generator=torch.manual_seed(SEED). Without --class, a class-conditional model "
            + "gets labels drawn from the seed, separately from the latents and noise.",
        "Output: --out FILE.png writes FILE.png for one image and FILE-0.png, FILE-1.png, ... "
            + "for a batch; --out DIR (an existing folder, or a name without extension) writes "
            + "DIR/0000.png, DIR/0001.png, ...; --out-tensor writes `image` [B,H,W,3] float32 "
            + "in [0,1]. Without either, image.png (image-0.png, ...) in the current folder."})
final class GenerateCommand implements Callable<Integer> {
  static final String DEFAULT_PNG = "image.png";
  /** More images than one call of any served model takes (imagenet64: 910). */
  static final int MAX_BATCH = 65536;

  @Spec CommandSpec spec;
  @ParentCommand Main main;

  @Mixin HubModelOptions model;

  @Option(names = "--config", paramLabel = "config.json",
      description = "A diffusers UNet config to use instead of the model's (for an OpenAI .pt "
          + "file of another name, or a weights file without config.json beside it).")
  Path unetConfig;

  @Option(names = "--class", paramLabel = "N|NAME", arity = "1..*", split = ",",
      converter = Converters.ClassLabelConverter.class,
      description = "Class label(s), as numbers or ImageNet class names (goldfish, "
          + "\"golden retriever\"): one for every image, or one per image (then --batch "
          + "defaults to their number).")
  List<Long> classes;

  @Option(names = "--batch", paramLabel = "B", description = "Number of images (default: 1; "
      + "at most what one call of the model takes, e.g. 910 for ImageNet 64x64).")
  Integer batch;

  @ArgGroup(exclusive = true, multiplicity = "0..1")
  StepOptions steps;

  @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
      description = "Seed of the torch-compatible generator (default: ${DEFAULT-VALUE}).")
  long seed;

  @Mixin AutoDeviceOption device;

  @Mixin DtypeOption dtype;

  @Mixin PngOutputOptions output;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    int images = batchSize();
    OutputFiles.Pngs pngs = output.pngs(DEFAULT_PNG, images);
    output.checkTensorFile();

    Path modelPath = model.resolve(main);
    SchedulerConfig schedulerConfig = schedulerConfig(modelPath);
    StepOptions.apply(steps, new CMStochasticIterativeScheduler(schedulerConfig));

    long start = System.nanoTime();
    GenerationResult result;
    try (ConsistencyModelPipeline pipeline = ModelOpening.openPipeline("generate", modelPath,
        unetConfig, device.value, dtype.value, err)) {
      GenerationRequest request = request(pipeline.unet(), images, err);
      err.printf("generate: %s on %s %s: %d image%s, %s, %s, seed %d%n", modelPath,
          pipeline.unet().device(), dtype.value, images, images == 1 ? "" : "s",
          describeLabels(request.classLabels(), pipeline.unet().numClassEmbeds()),
          describeSteps(), seed);
      err.flush();
      // Every step in one call on the device: the images come back to the host only at the end.
      result = pipeline.generate(request);
      checkFinite(result, modelPath);
      int steps = result.timesteps().length;
      err.printf(Locale.ROOT, "generate: %d step%s done at %.2f s%n", steps,
          steps == 1 ? "" : "s", (System.nanoTime() - start) / 1e9);
      err.flush();
    }

    PrintWriter stdout = spec.commandLine().getOut();
    for (Path written : output.write(pngs, result, () -> tensors(result, modelPath))) {
      stdout.println("wrote " + written);
    }
    stdout.flush();
    return 0;
  }

  /**
   * Refuses images with NaN or infinite values (weights that hold them, or a config that gives
   * them) before a PNG encoder reports a pixel, or a tensor file keeps them silently.
   */
  private static void checkFinite(GenerationResult result, Path modelPath)
      throws UsageException {
    float[] image = result.imageArray();
    int perImage = image.length / result.batchSize();
    for (int i = 0; i < image.length; i++) {
      if (!Float.isFinite(image[i])) {
        throw new UsageException("--model " + modelPath + ": image " + i / perImage
            + " holds NaN or infinite values: the weights or configs hold values the model "
            + "cannot run with");
      }
    }
  }

  /** --batch, else one image per --class label, else 1; checked against --class. */
  private int batchSize() throws UsageException {
    if (batch != null) {
      UsageException.checkAtLeastOne("--batch", batch);
      // Checked again against the model once it is open; this bound comes first, before a
      // file name is made for every image.
      if (batch > MAX_BATCH) {
        throw new UsageException("--batch " + batch + ": at most " + MAX_BATCH
            + " images in one run");
      }
    }
    if (classes != null && classes.isEmpty()) {
      throw new UsageException("--class: expected at least one label");
    }
    if (classes == null) {
      return batch == null ? 1 : batch;
    }
    if (batch == null) {
      return classes.size();
    }
    if (classes.size() != 1 && classes.size() != batch) {
      throw new UsageException("--class: expected one label, or " + batch + " (one per image of "
          + "--batch " + batch + "), found " + classes.size());
    }
    return batch;
  }

  private static SchedulerConfig schedulerConfig(Path modelPath) throws UsageException {
    try {
      return ConsistencyModelPipeline.readSchedulerConfig(modelPath);
    } catch (CheckpointException e) {
      throw new UsageException("--model " + e.getMessage(), e);
    }
  }

  /** The request, with --class checked against the model's classes. */
  private GenerationRequest request(UNet unet, int images, PrintWriter err)
      throws UsageException {
    if (images > unet.maxBatch()) {
      throw new UsageException((batch != null ? "--batch " : "--class: ") + images
          + " images: at most " + unet.maxBatch() + " in one call of this model");
    }
    GenerationRequest.Builder b = GenerationRequest.builder().batchSize(images).seed(seed);
    if (steps != null && steps.timesteps != null) {
      b.timesteps(steps.timesteps);
    } else {
      b.numInferenceSteps(steps == null ? 1 : steps.steps);
    }
    if (!unet.isClassConditional()) {
      if (classes != null) {
        err.println("generate: the model is unconditional: --class is ignored");
      }
      return b.build();
    }
    int n = unet.numClassEmbeds();
    if (classes == null) { // what the pipeline would draw, drawn here to be reported
      return b.classLabels(ConsistencyModelPipeline.randomClassLabels(seed, images, n)).build();
    }
    for (long label : classes) {
      if (label < 0 || label >= n) {
        throw new UsageException("--class " + label + ": expected a label in [0, " + n
            + ") (num_class_embeds of the model)");
      }
    }
    return b.classLabels(classes.stream().mapToLong(Long::longValue).toArray()).build();
  }

  private String describeLabels(long[] labels, int numClassEmbeds) {
    if (labels == null) {
      return "unconditional";
    }
    boolean imageNet = numClassEmbeds == ImageNetClasses.COUNT;
    String list = Arrays.stream(labels)
        .mapToObj(l -> imageNet ? l + " (" + ImageNetClasses.name(l) + ")" : Long.toString(l))
        .collect(Collectors.joining(","));
    return (labels.length == 1 ? "class " : "classes ") + list
        + (classes == null ? " (drawn from the seed)" : "");
  }

  private String describeSteps() {
    if (steps != null && steps.timesteps != null) {
      return "timesteps " + Arrays.stream(steps.timesteps).mapToObj(Integer::toString)
          .collect(Collectors.joining(","));
    }
    int n = steps == null ? 1 : steps.steps;
    return n + (n == 1 ? " step" : " steps");
  }

  /** What --out-tensor holds: {@code image} [B,H,W,3] in [0,1], and how it was made. */
  private static SafetensorsWriter tensors(GenerationResult result, Path modelPath) {
    return PngOutputOptions.provenance(new SafetensorsWriter(), modelPath.toString(),
        result.seed(), result.timesteps(), result.classLabels())
        .addFloats("image", result.shape(), result.imageArray());
  }
}
