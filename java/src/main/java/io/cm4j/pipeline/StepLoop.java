package io.cm4j.pipeline;

/**
 * A batch of images in progress, a UNet pass at a time: {@link #modelInput()} for the current
 * {@link #timestep()} goes through the UNet and {@link #step} takes its output. A generation's
 * {@link ConsistencyModelPipeline.Sampling} and an edit's {@code io.cm4j.edit.Editing} are both
 * one, so a caller that batches passes of many requests (the service) drives either alike.
 *
 * @param <R> what the finished loop gives
 */
public interface StepLoop<R> {
  /** Number of images. */
  int batchSize();

  int numSteps();

  /** Index of the next step, from 0 to {@link #numSteps()}. */
  int stepIndex();

  boolean isDone();

  /** The current step's timestep: the UNet's timestep input for every image. */
  float timestep();

  /** The UNet input of the current step: the sample scaled for its sigma, [B, C, S, S]. */
  float[] modelInput();

  /** One label per image (drawn ones included), or null for an unconditional model. */
  long[] classLabels();

  /** Takes the UNet output for {@link #modelInput()} ([B, C, S, S]) and advances one step. */
  void step(float[] modelOutput);

  /** The output, once {@link #isDone()}. */
  R result();
}
