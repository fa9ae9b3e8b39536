package io.cm4j.pipeline;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.SamplingSteps;
import io.cm4j.UNet;
import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Checkpoints;
import io.cm4j.weights.Json;
import io.cm4j.weights.openai.OpenAICheckpoint;
import io.cm4j.weights.openai.OpenAIConfigs;
import io.cm4j.weights.torch.TorchZipCheckpoint;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;

/**
 * diffusers' {@code ConsistencyModelPipeline}: a UNet and a {@link CMStochasticIterativeScheduler}
 * turning seeded noise into images in one or a few steps (Algorithm 1 of Song et al. 2023).
 *
 * <p>The loop is diffusers' own, so the same seed and arguments give the same images:
 * <pre>
 * latents = randn((B, C, S, S))            first draw of the seed's generator (or given)
 * sample  = latents * init_noise_sigma
 * for t in scheduler.timesteps:
 *     model_output = unet(scale_model_input(sample, t), t, class_labels)
 *     sample = step(model_output, t, sample, noise)   noise: the generator's next randn draw,
 *                                                      drawn at every step of a multistep
 *                                                      schedule, never for a one-step one
 * image = (sample / 2 + 0.5).clamp(0, 1)   as [B, H, W, C]
 * </pre>
 * The generator is {@link TorchGenerator}: {@code torch.manual_seed(seed)} on the CPU.
 *
 * <p><b>Class labels.</b> A class-conditional model needs one label per image. When none are
 * given they are drawn from the seed by {@link #randomClassLabels}, from a generator of their
 * own, so the latents and step noise stay exactly those of diffusers. (diffusers draws them from
 * torch's global RNG instead, which no seed argument controls.) Unconditional models ignore
 * labels.
 *
 * <p>Owns its UNet: {@link #close()} frees it. {@link #generate} may be called from several
 * threads at once (each call has its own scheduler and generator; the UNet queues passes).
 */
public final class ConsistencyModelPipeline implements AutoCloseable {
  /** The {@code _class_name} of {@code model_index.json}. */
  public static final String CLASS_NAME = "ConsistencyModelPipeline";
  private static final String SCHEDULER_CONFIG = "scheduler/scheduler_config.json";

  private final UNet unet;
  private final SchedulerConfig schedulerConfig;

  /** Called after each step with the step's index (0-based), the count, and the new sample. */
  @FunctionalInterface
  public interface StepListener {
    /**
     * @param timestep the scheduler timestep just run (the UNet's timestep input)
     * @param sample the sample after the step, [B, C, S, S] (a copy)
     */
    void onStep(int step, int numSteps, float timestep, FloatTensor sample);
  }

  /**
   * A pipeline over {@code unet}, which it takes ownership of.
   *
   * @throws IllegalArgumentException when the UNet's output is not shaped like its input, as
   *     the scheduler's step needs
   */
  public ConsistencyModelPipeline(UNet unet, SchedulerConfig schedulerConfig) {
    this.unet = Objects.requireNonNull(unet, "unet");
    this.schedulerConfig = Objects.requireNonNull(schedulerConfig, "schedulerConfig");
    if (unet.outChannels() != unet.inChannels()) {
      throw new IllegalArgumentException("a consistency model's UNet must output as many "
          + "channels as it takes: expected out_channels " + unet.inChannels() + ", found "
          + unet.outChannels());
    }
  }

  /** {@link #open(Path, Device, Precision)} on the CPU in float32. */
  public static ConsistencyModelPipeline open(Path model) throws IOException, Cm4jException {
    return open(model, Device.CPU, Precision.FP32);
  }

  /** {@link #open(Path, Path, Device, Precision)} with the model's own UNet config. */
  public static ConsistencyModelPipeline open(Path model, Device device, Precision precision)
      throws IOException, Cm4jException {
    return open(model, null, device, precision);
  }

  /**
   * A pipeline from a model on disk: a diffusers pipeline folder ({@code model_index.json},
   * {@code unet/}, {@code scheduler/}), or a UNet folder or weights file in any format
   * {@link UNet#open(Path, Path, Device, Precision)} takes, whose scheduler config is found as
   * {@link #readSchedulerConfig} says (for an original OpenAI {@code .pt} checkpoint, the one
   * shipped for its file name).
   *
   * @param unetConfig a diffusers UNet config to use instead of the model's, or null
   * @throws CheckpointException when a file is missing or malformed (the message names it)
   * @throws Cm4jException when the engine refuses the UNet or the device
   */
  public static ConsistencyModelPipeline open(Path model, Path unetConfig, Device device,
      Precision precision) throws IOException, Cm4jException {
    checkModelIndex(model);
    SchedulerConfig config = readSchedulerConfig(model);
    UNet unet = UNet.open(model, unetConfig, device, precision);
    try {
      return new ConsistencyModelPipeline(unet, config);
    } catch (IllegalArgumentException e) {
      unet.close();
      throw new CheckpointException(model, e.getMessage());
    }
  }

  /**
   * The scheduler config shipped for an original OpenAI checkpoint file of a published name
   * ({@code cd_imagenet64_l2.pt}, ...), as JSON text; empty for any other model.
   *
   * @throws CheckpointException when the file has such a name but cannot be read
   */
  public static Optional<String> shippedSchedulerConfig(Path model) throws CheckpointException {
    if (!Files.isRegularFile(model) || model.getFileName() == null) {
      return Optional.empty();
    }
    Optional<OpenAIConfigs.Known> known = OpenAIConfigs.forFileName(
        model.getFileName().toString());
    if (known.isEmpty() || !"torch".equals(Checkpoints.detect(model))) {
      return Optional.empty();
    }
    // the names alone say whether it is an OpenAI file; mapping them needs the UNet config
    try (Checkpoint c = TorchZipCheckpoint.open(model)) {
      return OpenAICheckpoint.isOpenAI(c) ? Optional.of(known.get().schedulerConfig())
          : Optional.empty();
    }
  }

  /**
   * Where the scheduler config of a model is: {@code scheduler/scheduler_config.json} in the
   * pipeline folder, which for a UNet folder or weights file is the folder above the UNet's.
   * Empty when there is none (then diffusers' defaults apply, which are the CD ImageNet-64
   * checkpoints' values).
   */
  public static Optional<Path> findSchedulerConfig(Path model) {
    Path abs = model.toAbsolutePath().normalize();
    Path pipelineDir;
    if (Files.isDirectory(abs)) {
      pipelineDir = Files.isRegularFile(abs.resolve("unet/config.json")) ? abs : abs.getParent();
    } else {
      pipelineDir = abs.getParent() == null ? null : abs.getParent().getParent();
    }
    return Optional.ofNullable(pipelineDir).map(d -> d.resolve(SCHEDULER_CONFIG))
        .filter(Files::isRegularFile);
  }

  /**
   * The scheduler config of a model: the one shipped for an original OpenAI checkpoint
   * ({@link #shippedSchedulerConfig}), else the file {@link #findSchedulerConfig} finds, else
   * {@link SchedulerConfig#DEFAULT}. A pipeline folder, one with a
   * {@code model_index.json}, must have one.
   *
   * @throws CheckpointException when the file is unreadable or malformed, or missing from a
   *     pipeline folder
   */
  public static SchedulerConfig readSchedulerConfig(Path model) throws CheckpointException {
    Optional<String> shipped = shippedSchedulerConfig(model);
    if (shipped.isPresent()) {
      try {
        return SchedulerConfig.fromMap(Json.parseObject(shipped.get()));
      } catch (IllegalArgumentException e) {
        throw new CheckpointException(model, "shipped scheduler config: " + e.getMessage(), e);
      }
    }
    Optional<Path> file = findSchedulerConfig(model);
    if (file.isEmpty()) {
      if (Files.isRegularFile(model.resolve("model_index.json"))) {
        throw new CheckpointException(model, "pipeline folder without " + SCHEDULER_CONFIG);
      }
      return SchedulerConfig.DEFAULT;
    }
    try {
      return SchedulerConfig.read(file.get());
    } catch (IllegalArgumentException e) {
      String prefix = file.get() + ": "; // SchedulerConfig.read names the file, as we do
      String m = e.getMessage();
      throw new CheckpointException(file.get(),
          m.startsWith(prefix) ? m.substring(prefix.length()) : m, e);
    } catch (IOException e) {
      throw new CheckpointException(file.get(), "cannot read: " + CheckpointException.reason(e), e);
    }
  }

  /** Refuses a {@code model_index.json} that names another pipeline class. */
  private static void checkModelIndex(Path model) throws CheckpointException {
    Path index = model.resolve("model_index.json");
    if (!Files.isDirectory(model) || !Files.isRegularFile(index)) {
      return;
    }
    Object className;
    try {
      className = Json.parseObject(Files.readString(index, StandardCharsets.UTF_8))
          .get("_class_name");
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(index, e.getMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(index, "cannot read: " + CheckpointException.reason(e), e);
    }
    if (className != null && !CLASS_NAME.equals(className)) {
      throw new CheckpointException(index, "expected a " + CLASS_NAME + ", found _class_name "
          + className);
    }
  }

  /**
   * Labels for a class-conditional model when none are given: {@code batch} values in
   * {@code [0, numClassEmbeds)} from a generator of their own seeded with {@code seed}, so the
   * latents and noise drawn from the seed are untouched. The same values as
   * {@code torch.randint(0, numClassEmbeds, (batch,), generator=torch.manual_seed(seed))}.
   */
  public static long[] randomClassLabels(long seed, int batch, int numClassEmbeds) {
    return new TorchGenerator(seed).randint(0, numClassEmbeds, batch);
  }

  /** {@link #generate(GenerationRequest, StepListener)} without a listener. */
  public GenerationResult generate(GenerationRequest request) throws Cm4jException {
    return generate(request, null);
  }

  /**
   * Runs the pipeline. Every argument is checked before the first forward pass.
   *
   * <p>The loop runs on the UNet's device ({@link Sampling#runSteps}): without a listener all
   * steps in one call, so the images leave the device only at the end; with one, a call per
   * step, so that the listener sees each step's sample. Either way the images are bit for bit
   * those of running {@link Sampling#modelInput}, {@link UNet#forward} and
   * {@link Sampling#step} step by step.
   *
   * @param listener told about each step as it finishes; may be null
   * @throws IllegalArgumentException when the request does not fit the model or the scheduler:
   *     a label outside {@code [0, num_class_embeds)}, latents of the wrong shape, or timesteps
   *     the scheduler refuses (with diffusers' message)
   * @throws Cm4jException when a forward pass fails
   */
  public GenerationResult generate(GenerationRequest request, StepListener listener)
      throws Cm4jException {
    Sampling sampling = start(request);
    if (listener == null) {
      sampling.runSteps(sampling.numSteps());
    }
    while (!sampling.isDone()) {
      float t = sampling.timestep();
      int step = sampling.stepIndex();
      sampling.runSteps(1);
      listener.onStep(step, sampling.numSteps(), t, FloatTensor.of(sampling.shape(),
          sampling.sample()));
    }
    return sampling.result();
  }

  /**
   * Starts {@link #generate}'s loop without running the UNet, so that a caller can batch the
   * forward passes of several generations into one (as {@code io.cm4j.serve.GenerationService}
   * does): the seed's latents are drawn and every argument is checked here.
   *
   * @throws IllegalArgumentException as {@link #generate} does
   */
  public Sampling start(GenerationRequest request) {
    return new Sampling(request);
  }

  /**
   * One generation in progress, a step at a time: {@link #modelInput()} for the current
   * {@link #timestep()} goes through the UNet, and {@link #step} takes its output. Exactly the
   * arithmetic and generator draws of {@link #generate}, so the result does not depend on what
   * else shared the UNet pass. Not thread-safe.
   */
  public final class Sampling implements StepLoop<GenerationResult> {
    private final GenerationRequest request;
    private final long[] shape; // [B, C, S, S]
    private final long[] labels; // null for an unconditional model
    private final CMStochasticIterativeScheduler scheduler;
    private final TorchGenerator generator;
    private final float[] timesteps;
    private float[] sample; // [B, C, S, S]
    private int step;

    private Sampling(GenerationRequest request) {
      this.request = request;
      int batch = request.batchSize();
      unet.checkBatch("batch_size", batch);
      int size = unet.sampleSize();
      shape = new long[] {batch, unet.inChannels(), size, size};
      labels = ConsistencyModelPipeline.this.classLabels(request);
      scheduler = new CMStochasticIterativeScheduler(schedulerConfig);
      scheduler.setTimesteps(request.numInferenceSteps(), request.timesteps());
      FloatTensor given = request.latents();
      if (given != null && !Arrays.equals(given.shape(), shape)) {
        throw new IllegalArgumentException("The shape of latents is "
            + Arrays.toString(given.shape()) + " but is expected to be " + Arrays.toString(shape)
            + ".");
      }
      generator = new TorchGenerator(request.seed());
      float[] latents = given != null ? given.toArray() : generator.randn(shape);
      float sigmaMax = (float) scheduler.initNoiseSigma();
      sample = new float[latents.length];
      for (int i = 0; i < sample.length; i++) {
        sample[i] = latents[i] * sigmaMax;
      }
      timesteps = scheduler.timesteps();
    }

    public GenerationRequest request() {
      return request;
    }

    @Override
    public int batchSize() {
      return (int) shape[0];
    }

    /** The UNet input shape, [B, C, S, S]. */
    public long[] shape() {
      return shape.clone();
    }

    @Override
    public long[] classLabels() {
      return labels == null ? null : labels.clone();
    }

    @Override
    public int stepIndex() {
      return step;
    }

    @Override
    public int numSteps() {
      return timesteps.length;
    }

    @Override
    public boolean isDone() {
      return step == timesteps.length;
    }

    @Override
    public float timestep() {
      checkNotDone();
      return timesteps[step];
    }

    @Override
    public float[] modelInput() {
      checkNotDone();
      return scheduler.scaleModelInput(sample, timesteps[step]);
    }

    /**
     * Takes the UNet output for {@link #modelInput()} ([B, C, S, S]) and advances one step,
     * drawing this generation's step noise.
     */
    @Override
    public void step(float[] modelOutput) {
      checkNotDone();
      float[] noise = scheduler.drawsNoise() ? generator.randn(shape) : null;
      sample = scheduler.step(modelOutput, timesteps[step], sample, noise);
      step++;
    }

    /**
     * Runs the next {@code count} steps (fewer when fewer are left) in one
     * {@link UNet#sample} call, on the UNet's device: the sample goes there once and comes
     * back once. The step noise is drawn first, in the order {@link #step} draws it, and the
     * scheduler's values come from the code {@link #modelInput} and {@link #step} use, so the
     * result is bit for bit that of {@code count} rounds of {@link #modelInput},
     * {@link UNet#forward} and {@link #step}. After a failure this generation cannot go on (its
     * scheduler and generator have moved past the steps that did not run).
     *
     * @throws IllegalArgumentException when count is below 1
     * @throws Cm4jException when the UNet fails
     */
    public void runSteps(int count) throws Cm4jException {
      checkNotDone();
      if (count < 1) {
        throw new IllegalArgumentException("count: expected at least 1 step, found " + count);
      }
      int steps = Math.min(count, timesteps.length - step);
      int batch = batchSize();
      int rows = steps * batch;
      float[] ts = new float[rows];
      float[] inputScale = new float[rows];
      float[] cSkip = new float[rows];
      float[] cOut = new float[rows];
      float[] noiseScale = new float[rows];
      boolean noisy = scheduler.drawsNoise();
      float[] noise = noisy ? new float[SamplingSteps.noiseLength(steps, sample.length)] : null;
      for (int s = 0; s < steps; s++) {
        float t = timesteps[step + s];
        CMStochasticIterativeScheduler.StepScalings v = scheduler.takeStep(t);
        for (int b = s * batch; b < (s + 1) * batch; b++) {
          ts[b] = t;
          inputScale[b] = v.inputScale();
          cSkip[b] = v.cSkip();
          cOut[b] = v.cOut();
          noiseScale[b] = v.noiseScale();
        }
        if (noisy) {
          System.arraycopy(generator.randn(shape), 0, noise, s * sample.length, sample.length);
        }
      }
      SchedulerConfig c = scheduler.config();
      SamplingSteps values = new SamplingSteps(batch, ts, inputScale, cSkip, cOut, noiseScale,
          (float) c.sNoise(), c.clipDenoised());
      long[] noiseShape = {steps, shape[0], shape[1], shape[2], shape[3]};
      FloatTensor out = unet.sample(FloatTensor.of(shape, sample), values,
          noisy ? FloatTensor.of(noiseShape, noise) : null, labels);
      sample = out.toArray();
      step += steps;
    }

    /** A copy of the current sample, [B, C, S, S]. */
    public float[] sample() {
      return sample.clone();
    }

    /** The images, once every step is done. */
    @Override
    public GenerationResult result() {
      if (!isDone()) {
        throw new IllegalStateException("generation not done: step " + step + " of "
            + timesteps.length);
      }
      int batch = (int) shape[0];
      int channels = (int) shape[1];
      int size = (int) shape[2];
      float[] images = ImageOutput.denormalizeToNhwc(sample, batch, channels, size, size);
      return new GenerationResult(images, batch, size, size, channels, classLabels(),
          timesteps.clone(), request.seed());
    }

    private void checkNotDone() {
      if (isDone()) {
        throw new IllegalStateException("generation done: all " + timesteps.length
            + " steps have run");
      }
    }
  }

  /** The request's labels checked against the model, drawn ones, or null (unconditional). */
  private long[] classLabels(GenerationRequest request) {
    if (!unet.isClassConditional()) {
      return null;
    }
    int classes = unet.numClassEmbeds();
    long[] labels = request.classLabels();
    if (labels == null) {
      return randomClassLabels(request.seed(), request.batchSize(), classes);
    }
    for (int i = 0; i < labels.length; i++) {
      if (labels[i] < 0 || labels[i] >= classes) {
        throw new IllegalArgumentException("class label " + labels[i] + " is out of range: "
            + "expected a label in [0, " + classes + ") (num_class_embeds of the model)");
      }
    }
    return labels;
  }

  /** The UNet this pipeline runs (owned by it). */
  public UNet unet() {
    return unet;
  }

  public SchedulerConfig schedulerConfig() {
    return schedulerConfig;
  }

  /** Frees the UNet. A second call does nothing. */
  @Override
  public void close() {
    unet.close();
  }

  @Override
  public String toString() {
    return "ConsistencyModelPipeline[" + unet + ", " + schedulerConfig + "]";
  }
}
