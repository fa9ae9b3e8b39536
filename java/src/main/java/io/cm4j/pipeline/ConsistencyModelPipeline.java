package io.cm4j.pipeline;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Json;
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

  /**
   * A pipeline from a diffusers model on disk: a pipeline folder ({@code model_index.json},
   * {@code unet/}, {@code scheduler/}), or a UNet folder or weights file as {@link UNet#open}
   * takes them, whose scheduler config is looked for as {@link #findSchedulerConfig} says.
   *
   * @throws CheckpointException when a file is missing or malformed (the message names it)
   * @throws Cm4jException when the engine refuses the UNet or the device
   */
  public static ConsistencyModelPipeline open(Path model, Device device, Precision precision)
      throws IOException, Cm4jException {
    checkModelIndex(model);
    SchedulerConfig config = readSchedulerConfig(model);
    UNet unet = UNet.open(model, device, precision);
    try {
      return new ConsistencyModelPipeline(unet, config);
    } catch (IllegalArgumentException e) {
      unet.close();
      throw new CheckpointException(model, e.getMessage());
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
   * The scheduler config of a model (see {@link #findSchedulerConfig}), or
   * {@link SchedulerConfig#DEFAULT} when it has none. A pipeline folder, one with a
   * {@code model_index.json}, must have one.
   *
   * @throws CheckpointException when the file is unreadable or malformed, or missing from a
   *     pipeline folder
   */
  public static SchedulerConfig readSchedulerConfig(Path model) throws CheckpointException {
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
      throw new CheckpointException(file.get(), "cannot read: " + e.getMessage(), e);
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
      throw new CheckpointException(index, "cannot read: " + e.getMessage(), e);
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
   * @param listener told about each step as it finishes; may be null
   * @throws IllegalArgumentException when the request does not fit the model or the scheduler:
   *     a label outside {@code [0, num_class_embeds)}, latents of the wrong shape, or timesteps
   *     the scheduler refuses (with diffusers' message)
   * @throws Cm4jException when a forward pass fails
   */
  public GenerationResult generate(GenerationRequest request, StepListener listener)
      throws Cm4jException {
    int batch = request.batchSize();
    int channels = unet.inChannels();
    int size = unet.sampleSize();
    long[] shape = {batch, channels, size, size};
    long[] labels = classLabels(request);
    CMStochasticIterativeScheduler scheduler = new CMStochasticIterativeScheduler(schedulerConfig);
    scheduler.setTimesteps(request.numInferenceSteps(), request.timesteps());
    FloatTensor given = request.latents();
    if (given != null && !Arrays.equals(given.shape(), shape)) {
      throw new IllegalArgumentException("The shape of latents is " + Arrays.toString(given.shape())
          + " but is expected to be " + Arrays.toString(shape) + ".");
    }

    TorchGenerator generator = new TorchGenerator(request.seed());
    float[] latents = given != null ? given.toArray() : generator.randn(shape); // [B, C, S, S]
    float sigmaMax = (float) scheduler.initNoiseSigma();
    float[] sample = new float[latents.length];
    for (int i = 0; i < sample.length; i++) {
      sample[i] = latents[i] * sigmaMax;
    }
    float[] timesteps = scheduler.timesteps();
    float[] perImage = new float[batch]; // the UNet takes one timestep per image
    for (int step = 0; step < timesteps.length; step++) {
      float t = timesteps[step];
      Arrays.fill(perImage, t);
      FloatTensor scaled = FloatTensor.of(shape, scheduler.scaleModelInput(sample, t));
      float[] modelOutput = unet.forward(scaled, perImage, labels).toArray(); // [B, C, S, S]
      float[] noise = scheduler.drawsNoise() ? generator.randn(shape) : null;
      sample = scheduler.step(modelOutput, t, sample, noise);
      if (listener != null) {
        listener.onStep(step, timesteps.length, t, FloatTensor.of(shape, sample));
      }
    }
    float[] images = ImageOutput.denormalizeToNhwc(sample, batch, channels, size, size);
    return new GenerationResult(images, batch, size, size, channels, labels, timesteps,
        request.seed());
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
