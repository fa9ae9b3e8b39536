package io.cm4j.edit;

import io.cm4j.EditReplacement;
import io.cm4j.pipeline.StepLoop;
import io.cm4j.pipeline.TorchGenerator;

/**
 * One edit in progress, a step at a time: {@link #modelInput()} for the current
 * {@link #timestep()} goes through the UNet and {@link #step} takes its output. The loop of
 * every task (golden README, "Editing cases"):
 * <pre>
 * x = y + sigma_0 * z0                          z0: the generator's first draw
 * for each step k:
 *     d = clamp(cOut * unet(x / inputScale, t_k) + cSkip * x, -1, 1)
 *     x = R(y, d) + e_k * noiseScale_k           e_k: the next draw; x = R(y, d) without one
 * out = clamp(x, -1, 1)
 * </pre>
 * with R the task's {@link Replacement} (the identity for sdedit, denoise and interpolate).
 * Created by {@link ImageEditor#start}, which checks every input. Not thread-safe.
 */
public final class Editing implements StepLoop<EditResult> {
  private final EditRequest request;
  private final long[] shape; // [B, C, S, S]
  private final long[] labels;
  private final EditReplacement.Kind kind;
  private final int patch;
  private final float[] reference; // y [B, C, S, S], null without a replacement
  private final float[] maskKeep; // [B, S * S], inpaint only
  private final Schedule schedule;
  private final TorchGenerator generator;
  private float[] sample;
  private int step;

  /** The per-step scalars, shared by every image of the edit. */
  record Schedule(float[] timesteps, float[] inputScale, float[] cSkip, float[] cOut,
      float[] noiseScale, boolean drawsNoise) {
    int length() {
      return timesteps.length;
    }

    boolean equalValues(Schedule o) {
      return java.util.Arrays.equals(timesteps, o.timesteps)
          && java.util.Arrays.equals(inputScale, o.inputScale)
          && java.util.Arrays.equals(cSkip, o.cSkip) && java.util.Arrays.equals(cOut, o.cOut)
          && java.util.Arrays.equals(noiseScale, o.noiseScale) && drawsNoise == o.drawsNoise;
    }
  }

  Editing(EditRequest request, long[] shape, long[] labels, int patch, float[] reference,
      float[] maskKeep, Schedule schedule, TorchGenerator generator, float[] initialSample) {
    this.request = request;
    this.shape = shape;
    this.labels = labels;
    this.kind = request.task().replacement();
    this.patch = patch;
    this.reference = reference;
    this.maskKeep = maskKeep;
    this.schedule = schedule;
    this.generator = generator;
    this.sample = initialSample;
  }

  public EditRequest request() {
    return request;
  }

  public EditTask task() {
    return request.task();
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
  public int numSteps() {
    return schedule.length();
  }

  @Override
  public int stepIndex() {
    return step;
  }

  @Override
  public boolean isDone() {
    return step == schedule.length();
  }

  @Override
  public float timestep() {
    checkNotDone();
    return schedule.timesteps()[step];
  }

  /** The scheduler's timesteps of every step, in order. */
  public float[] timesteps() {
    return schedule.timesteps().clone();
  }

  /** A copy of the current sample [B, C, S, S]: after the last step, before the final clamp. */
  public float[] sample() {
    return sample.clone();
  }

  /** The prepared reference y [B, C, S, S], or null for a task without replacement. */
  public float[] reference() {
    return reference == null ? null : reference.clone();
  }

  @Override
  public float[] modelInput() {
    checkNotDone();
    float scale = schedule.inputScale()[step];
    float[] out = new float[sample.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = sample[i] / scale;
    }
    return out;
  }

  /** Takes the UNet output for {@link #modelInput()} and advances one step. */
  @Override
  public void step(float[] modelOutput) {
    checkNotDone();
    if (modelOutput.length != sample.length) {
      throw new IllegalArgumentException("expected a model output of " + sample.length
          + " elements, found " + modelOutput.length);
    }
    float cOut = schedule.cOut()[step];
    float cSkip = schedule.cSkip()[step];
    float[] denoised = new float[sample.length];
    for (int i = 0; i < denoised.length; i++) {
      denoised[i] = clamp(cOut * modelOutput[i] + cSkip * sample[i]);
    }
    float[] next = replace(denoised);
    float[] noise = drawNoise();
    if (noise != null) {
      float scale = schedule.noiseScale()[step];
      for (int i = 0; i < next.length; i++) {
        next[i] = next[i] + noise[i] * scale;
      }
    }
    sample = next;
    step++;
  }

  /** R(y, d). */
  private float[] replace(float[] d) {
    int batch = batchSize();
    int size = (int) shape[2];
    float[] out = new float[d.length];
    switch (kind) {
      case INPAINT -> Replacement.inpaint(reference, d, maskKeep, out, batch, size * size);
      case COLORIZE -> Replacement.colorize(reference, d, out, batch, size * size);
      case SUPERRES -> Replacement.superres(reference, d, out, batch * (int) shape[1], size,
          patch);
      case NONE -> System.arraycopy(d, 0, out, 0, d.length);
      default -> throw new AssertionError(kind);
    }
    return out;
  }

  /** This step's noise draw, or null when the schedule draws none. */
  float[] drawNoise() {
    return schedule.drawsNoise() ? generator.randn(shape) : null;
  }

  Schedule schedule() {
    return schedule;
  }

  EditReplacement.Kind kind() {
    return kind;
  }

  int patch() {
    return patch;
  }

  float[] maskKeep() {
    return maskKeep;
  }

  float[] referenceArray() {
    return reference;
  }

  float[] sampleArray() {
    return sample;
  }

  /** Takes the sample after {@code steps} steps run elsewhere (the device loop). */
  void advance(float[] newSample, int steps) {
    sample = newSample;
    step += steps;
  }

  /** The output, once every step is done: {@code clamp(x, -1, 1)}. */
  @Override
  public EditResult result() {
    if (!isDone()) {
      throw new IllegalStateException("edit not done: step " + step + " of "
          + schedule.length());
    }
    float[] out = new float[sample.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = clamp(sample[i]);
    }
    return new EditResult(request.task(), out, shape, reference, labels,
        schedule.timesteps().clone(), request.seed());
  }

  /** Java's Math.min(Math.max(v, -1f), 1f), as the native backends clamp (NaN stays NaN). */
  static float clamp(float v) {
    return Math.min(Math.max(v, -1f), 1f);
  }

  private void checkNotDone() {
    if (isDone()) {
      throw new IllegalStateException("edit done: all " + schedule.length()
          + " steps have run");
    }
  }
}
