package io.cm4j.edit;

import io.cm4j.Cm4jException;
import io.cm4j.EditReplacement;
import io.cm4j.FloatTensor;
import io.cm4j.UNet;
import io.cm4j.pipeline.CMStochasticIterativeScheduler;
import io.cm4j.pipeline.CMStochasticIterativeScheduler.StepScalings;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.pipeline.TorchGenerator;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Zero-shot image editing with a consistency model (Song et al. 2023, Algorithm 4 and
 * Appendix D): inpainting, colorization, super-resolution, stroke-guided editing (SDEdit),
 * denoising and interpolation, exact to the original OpenAI code (and diffusers for
 * interpolation). Every task runs the loop {@link Editing} describes; they differ in the
 * reference they prepare, their replacement operator and their schedule.
 *
 * <p>Inputs are model-range tensors ([-1, 1], NCHW, 3 channels, the model's size;
 * {@link EditImages} reads PNGs). Everything is checked before the first forward pass;
 * bad input throws IllegalArgumentException whose message starts with the argument's name
 * ({@code image}, {@code mask_keep}, {@code sigma}, {@code timesteps}, {@code alphas},
 * {@code class_labels}, ...).
 *
 * <p>Does not own the UNet. Thread-safe: each edit has its own generator and state.
 */
public final class ImageEditor {
  /** Superres from a full-size image: the patch size of the original code. */
  public static final int DEFAULT_PATCH = 8;

  private final UNet unet;
  private final SchedulerConfig config;

  public ImageEditor(UNet unet, SchedulerConfig config) {
    this.unet = Objects.requireNonNull(unet, "unet");
    this.config = Objects.requireNonNull(config, "config");
    if (unet.outChannels() != unet.inChannels()) {
      throw new IllegalArgumentException("a consistency model's UNet must output as many "
          + "channels as it takes: expected out_channels " + unet.inChannels() + ", found "
          + unet.outChannels());
    }
  }

  /** An editor over a pipeline's UNet and scheduler config (the pipeline keeps the UNet). */
  public static ImageEditor of(ConsistencyModelPipeline pipeline) {
    return new ImageEditor(pipeline.unet(), pipeline.schedulerConfig());
  }

  public UNet unet() {
    return unet;
  }

  /** Inpaints: maskKeep [B, 1, S, S] holds 1 where the image's pixel is kept, 0 to generate. */
  public EditResult inpaint(FloatTensor images, FloatTensor maskKeep, EditOptions options)
      throws Cm4jException {
    return edit(options.apply(EditRequest.builder(EditTask.INPAINT)).image(images)
        .maskKeep(maskKeep).build());
  }

  /** Colours images, keeping their luma (gray images work: their RGB values are equal). */
  public EditResult colorize(FloatTensor images, EditOptions options) throws Cm4jException {
    return edit(options.apply(EditRequest.builder(EditTask.COLORIZE)).image(images).build());
  }

  /**
   * Super-resolves: from a full-size image (its {@code patch} x {@code patch} means are kept,
   * null for {@value #DEFAULT_PATCH}) or from a low-resolution one whose size divides the
   * model's (the patch is the ratio).
   */
  public EditResult superResolve(FloatTensor images, Integer patch, EditOptions options)
      throws Cm4jException {
    return edit(options.apply(EditRequest.builder(EditTask.SUPERRES)).image(images)
        .patch(patch).build());
  }

  /** Stroke-guided editing (timesteps [20, 16] by default: sigma 5.38, then 2.24). */
  public EditResult sdedit(FloatTensor strokes, EditOptions options) throws Cm4jException {
    return edit(options.apply(EditRequest.builder(EditTask.SDEDIT)).image(strokes).build());
  }

  /**
   * Denoises at {@code sigma}: with {@code addNoise}, noise of that level is first added from
   * the seed (the paper's demonstration); without, the images are taken as already noisy.
   */
  public EditResult denoise(FloatTensor images, float sigma, boolean addNoise,
      EditOptions options) throws Cm4jException {
    return edit(options.apply(EditRequest.builder(EditTask.DENOISE)).image(images).sigma(sigma)
        .addNoise(addNoise).build());
  }

  /** Interpolates between two [1, C, S, S] latents (null, null: drawn from the seed). */
  public EditResult interpolate(FloatTensor z1, FloatTensor z2, double[] alphas,
      EditOptions options) throws Cm4jException {
    return edit(options.apply(EditRequest.builder(EditTask.INTERPOLATE)).latents(z1, z2)
        .alphas(alphas).build());
  }

  /** Runs one edit. */
  public EditResult edit(EditRequest request) throws Cm4jException {
    return edit(List.of(request)).get(0);
  }

  /**
   * Runs several edits of the same task and schedule as one batch (the UNet sees all their
   * images at once); each result is what {@link #edit(EditRequest)} gives for its request alone.
   *
   * @throws IllegalArgumentException when a request is invalid (the message starts with
   *     {@code requests[i]} when there are several) or the requests do not share task and
   *     schedule
   */
  public List<EditResult> edit(List<EditRequest> requests) throws Cm4jException {
    List<Editing> editings = startAll(requests);
    runOnDevice(editings);
    List<EditResult> results = new ArrayList<>(editings.size());
    for (Editing e : editings) {
      results.add(e.result());
    }
    return results;
  }

  /** {@link #start} for each request, then the check that they can run as one batch. */
  public List<Editing> startAll(List<EditRequest> requests) {
    if (requests.isEmpty()) {
      throw new IllegalArgumentException("requests: expected at least one edit");
    }
    List<Editing> editings = new ArrayList<>(requests.size());
    for (int i = 0; i < requests.size(); i++) {
      try {
        editings.add(start(requests.get(i)));
      } catch (IllegalArgumentException e) {
        throw requests.size() == 1 ? e
            : new IllegalArgumentException("requests[" + i + "]: " + e.getMessage(), e);
      }
    }
    EditBatch.checkBatchable(editings);
    return editings;
  }

  /**
   * Runs every step of {@code editings} (one batch: same task and schedule) in Java around
   * {@link UNet#forward}, one forward pass per step for all their images.
   */
  public void runStepByStep(List<Editing> editings) throws Cm4jException {
    EditBatch.runStepByStep(unet, editings);
  }

  /**
   * Runs the remaining steps of {@code editings} (one batch: same task and schedule) in one
   * {@link UNet#edit} call on the UNet's device: the images go there once and come back once.
   * Each edit's step noise is drawn first, in the order {@link Editing#step} draws it, so the
   * result is bit for bit that of {@link #runStepByStep}. After a failure these edits cannot
   * go on (their generators have moved past the steps that did not run).
   */
  public void runOnDevice(List<Editing> editings) throws Cm4jException {
    EditBatch.runOnDevice(unet, editings);
  }

  /**
   * Checks a request against the model, prepares its reference and draws its initial sample,
   * without running the UNet (a caller may batch the passes of several edits, as
   * {@link #runStepByStep} does).
   *
   * @throws IllegalArgumentException for input that does not fit the task or the model
   */
  public Editing start(EditRequest r) {
    EditTask task = r.task();
    int size = unet.sampleSize();
    int channels = unet.inChannels();
    refuseUnless(task == EditTask.INPAINT, r.maskKeep() != null, "mask_keep", "inpaint");
    refuseUnless(task == EditTask.DENOISE, r.sigma() != null, "sigma", "denoise");
    refuseUnless(task == EditTask.INTERPOLATE, r.alphas() != null, "alphas", "interpolate");
    refuseUnless(task == EditTask.INTERPOLATE, r.z1() != null || r.z2() != null, "latents",
        "interpolate");
    refuseUnless(task == EditTask.SUPERRES, r.patch() != null, "patch", "superres");
    if (task == EditTask.DENOISE && (r.timesteps() != null || r.numInferenceSteps() != null)) {
      throw new EditArgumentException(r.timesteps() != null ? "timesteps" : "steps",
          "denoise runs one step at its sigma and takes no schedule");
    }
    if (task == EditTask.COLORIZE && channels != 3) {
      throw new IllegalArgumentException("colorize needs an RGB model, found in_channels "
          + channels);
    }
    int batch;
    float[] image = null;
    int patch = 0;
    if (task.takesImage()) {
      if (r.image() == null) {
        throw new EditArgumentException("image", task.cliName() + " needs an image");
      }
      batch = checkImage(r.image(), channels, size, task == EditTask.SUPERRES);
      image = r.image().toArray();
      if (task == EditTask.SUPERRES) {
        patch = superresPatch(r, size);
      }
    } else {
      batch = checkAlphas(r.alphas());
    }
    String batchArgument = task.takesImage() ? "image" : "alphas";
    try {
      unet.checkBatch(batchArgument, batch);
    } catch (IllegalArgumentException e) {  // "ARGUMENT: N images, at most M ...", as ours
      throw new EditArgumentException(batchArgument,
          e.getMessage().substring(batchArgument.length() + 2), e);
    }
    long[] shape = {batch, channels, size, size};
    long[] labels = classLabels(r.classLabels(), batch, r.seed());
    float[] mask = task == EditTask.INPAINT ? checkMask(r.maskKeep(), batch, size) : null;

    TorchGenerator generator = new TorchGenerator(r.seed());
    float[] reference = null;
    float[] sample;
    Editing.Schedule schedule;
    if (task == EditTask.DENOISE) {
      float sigma = checkSigma(r.sigma());
      schedule = denoiseSchedule(sigma);
      sample = r.addNoise() ? noised(image, sigma, generator.randn(shape)) : image;
      reference = null;
    } else {
      CMStochasticIterativeScheduler scheduler = schedule(r);
      schedule = steps(scheduler, task);
      float sigma0 = scheduler.sigmas()[0];
      if (task == EditTask.INTERPOLATE) {
        // diffusers' prepare_latents: times init_noise_sigma (sigma_max) whatever the
        // schedule, so an interpolated latent gives generate's image for that latent
        float[] latents = Slerp.latents(r.z1(), r.z2(), r.alphas(), shape, generator);
        float initNoiseSigma = (float) scheduler.initNoiseSigma();
        sample = new float[latents.length];
        for (int i = 0; i < sample.length; i++) {
          sample[i] = latents[i] * initNoiseSigma;
        }
      } else {
        int plane = size * size;
        switch (task.replacement()) {
          case INPAINT -> reference = Replacement.prepareInpaint(image, mask, batch, plane);
          case COLORIZE -> reference = Replacement.prepareColorize(image, batch, plane);
          case SUPERRES -> {
            int low = (int) r.image().dim(2);
            reference = low == size
                ? Replacement.prepareSuperres(image, batch * channels, size, patch)
                : Replacement.upsample(image, batch * channels, low, patch);
          }
          case NONE -> reference = image;
          default -> throw new AssertionError(task);
        }
        sample = noised(reference, sigma0, generator.randn(shape));
        if (task.replacement() == EditReplacement.Kind.NONE) {
          reference = null; // sdedit only starts from its strokes
        }
      }
    }
    return new Editing(r, shape, labels, patch, reference, mask, schedule, generator, sample);
  }

  /** {@code y + sigma * z}. */
  private static float[] noised(float[] y, float sigma, float[] z) {
    float[] x = new float[y.length];
    for (int i = 0; i < x.length; i++) {
      x[i] = y[i] + sigma * z[i];
    }
    return x;
  }

  private static void refuseUnless(boolean allowed, boolean given, String name, String who) {
    if (given && !allowed) {
      throw new EditArgumentException(name, "only " + who + " takes it");
    }
  }

  /** The batch of a [B, C, S, S] image (or, for superres, [B, C, L, L] with L dividing S). */
  private static int checkImage(FloatTensor image, int channels, int size, boolean lowResOk) {
    long[] s = image.shape();
    if (s.length != 4 || s[0] < 1 || s[1] != channels) {
      throw new EditArgumentException("image", "expected [B, " + channels + ", " + size + ", "
          + size + "], found " + Arrays.toString(s));
    }
    boolean fits = s[2] == size && s[3] == size
        || lowResOk && s[2] == s[3] && s[2] > 0 && size % s[2] == 0;
    if (!fits) {
      throw new EditArgumentException("image", "expected " + size + "x" + size
          + " (the model's sample_size" + (lowResOk ? ", or a size that divides it" : "")
          + "), found " + s[2] + "x" + s[3]);
    }
    float[] v = image.toArray();
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i])) {
        throw new EditArgumentException("image", "element " + i + " is " + v[i]
            + ", expected a finite value");
      }
    }
    return (int) s[0];
  }

  private static int superresPatch(EditRequest r, int size) {
    int low = (int) r.image().dim(2);
    if (low < size) {
      int patch = size / low;
      if (r.patch() != null && r.patch() != patch) {
        throw new EditArgumentException("patch", "a " + low + "x" + low + " image on a "
            + size + "x" + size + " model has patch " + patch + ", found " + r.patch());
      }
      return patch;
    }
    int patch = r.patch() == null ? Math.min(DEFAULT_PATCH, size) : r.patch();
    if (patch < 1 || size % patch != 0) {
      throw new EditArgumentException("patch", "expected a size that divides " + size
          + ", found " + patch);
    }
    return patch;
  }

  private static float[] checkMask(FloatTensor mask, int batch, int size) {
    if (mask == null) {
      throw new EditArgumentException("mask_keep", "inpaint needs a mask");
    }
    long[] expected = {batch, 1, size, size};
    if (!Arrays.equals(mask.shape(), expected)) {
      throw new EditArgumentException("mask_keep", "expected " + Arrays.toString(expected)
          + " like the image, found " + Arrays.toString(mask.shape()));
    }
    float[] m = mask.toArray();
    for (int i = 0; i < m.length; i++) {
      if (m[i] != 0f && m[i] != 1f) {
        throw new EditArgumentException("mask_keep", "expected 0 or 1 (a binary mask), found "
            + m[i] + " at element " + i);
      }
    }
    return m;
  }

  private static int checkAlphas(double[] alphas) {
    if (alphas == null || alphas.length == 0) {
      throw new EditArgumentException("alphas", "interpolate needs at least one alpha");
    }
    for (int i = 0; i < alphas.length; i++) {
      if (!(alphas[i] >= 0 && alphas[i] <= 1)) {
        throw new EditArgumentException("alphas", "expected values in [0, 1], found "
            + alphas[i] + " at position " + i);
      }
    }
    return alphas.length;
  }

  private float checkSigma(Float sigma) {
    if (sigma == null) {
      throw new EditArgumentException("sigma", "denoise needs the noise level");
    }
    float min = (float) config.sigmaMin();
    float max = (float) config.sigmaMax();
    if (!(sigma >= min && sigma <= max)) {
      throw new EditArgumentException("sigma", "expected a value in [" + config.sigmaMin()
          + ", " + config.sigmaMax() + "], found " + sigma);
    }
    return sigma;
  }

  /** The request's labels checked against the model, drawn ones, or null (unconditional). */
  private long[] classLabels(long[] labels, int batch, long seed) {
    if (!unet.isClassConditional()) {
      if (labels != null) {
        throw new EditArgumentException("class_labels", "the model is unconditional and "
            + "takes none, found " + labels.length);
      }
      return null;
    }
    int classes = unet.numClassEmbeds();
    if (labels == null) {
      return ConsistencyModelPipeline.randomClassLabels(seed, batch, classes);
    }
    if (labels.length != batch) {
      throw new EditArgumentException("class_labels", "expected " + batch
          + " labels (one per image), found " + labels.length);
    }
    for (long label : labels) {
      if (label < 0 || label >= classes) {
        throw new EditArgumentException("class_labels", label + " is out of range: "
            + "expected a label in [0, " + classes + ") (num_class_embeds of the model)");
      }
    }
    return labels;
  }

  /** The request's schedule (or the task's default) set on a new scheduler. */
  private CMStochasticIterativeScheduler schedule(EditRequest r) {
    CMStochasticIterativeScheduler scheduler = new CMStochasticIterativeScheduler(config);
    int[] timesteps = r.timesteps();
    Integer steps = r.numInferenceSteps();
    if (timesteps == null && steps == null) {
      timesteps = r.task().defaultTimesteps();
    }
    if (timesteps != null) {
      for (int t : timesteps) {
        if (t < 0 || t >= config.numTrainTimesteps()) {
          throw new EditArgumentException("timesteps", "expected values in [0, "
              + config.numTrainTimesteps() + "), found " + t);
        }
      }
    }
    try {
      scheduler.setTimesteps(timesteps == null ? steps : null, timesteps);
    } catch (IllegalArgumentException e) {
      throw new EditArgumentException(timesteps == null ? "steps" : "timesteps", e.getMessage(),
          e);
    }
    return scheduler;
  }

  /** Every step's scalars from the scheduler's own code. */
  private static Editing.Schedule steps(CMStochasticIterativeScheduler scheduler,
      EditTask task) {
    float[] timesteps = scheduler.timesteps();
    int n = timesteps.length;
    float[] inputScale = new float[n];
    float[] cSkip = new float[n];
    float[] cOut = new float[n];
    float[] noiseScale = new float[n];
    for (int k = 0; k < n; k++) {
      StepScalings s = scheduler.takeStep(timesteps[k]);
      inputScale[k] = s.inputScale();
      cSkip[k] = s.cSkip();
      cOut[k] = s.cOut();
      noiseScale[k] = s.noiseScale();
    }
    return new Editing.Schedule(timesteps, inputScale, cSkip, cOut, noiseScale,
        task.alwaysDrawsNoise() || n > 1);
  }

  /** One step at {@code sigma}, the UNet's timestep {@code 250 ln(sigma)}, no noise after. */
  private Editing.Schedule denoiseSchedule(float sigma) {
    StepScalings s = new CMStochasticIterativeScheduler(config).scalingsAt(sigma);
    return new Editing.Schedule(
        new float[] {(float) CMStochasticIterativeScheduler.sigmaToT(sigma)},
        new float[] {s.inputScale()}, new float[] {s.cSkip()}, new float[] {s.cOut()},
        new float[] {0f}, false);
  }
}
