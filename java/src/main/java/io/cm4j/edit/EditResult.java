package io.cm4j.edit;

import io.cm4j.FloatTensor;
import io.cm4j.pipeline.ImageBatch;
import io.cm4j.pipeline.ImageOutput;

/**
 * The output of one edit: {@code out} [B, C, S, S] in [-1, 1] (after the final clamp), the
 * images made from it as {@code ConsistencyModelPipeline} makes them, and what made them.
 * Immutable.
 */
public final class EditResult implements ImageBatch {
  private final EditTask task;
  private final float[] out;
  private final long[] shape;
  private final float[] reference;
  private final long[] classLabels;
  private final float[] timesteps;
  private final long seed;

  EditResult(EditTask task, float[] out, long[] shape, float[] reference, long[] classLabels,
      float[] timesteps, long seed) {
    this.task = task;
    this.out = out;
    this.shape = shape.clone();
    this.reference = reference;
    this.classLabels = classLabels;
    this.timesteps = timesteps;
    this.seed = seed;
  }

  public EditTask task() {
    return task;
  }

  public int batchSize() {
    return (int) shape[0];
  }

  /** {@code out} [B, C, S, S] float32 in [-1, 1]. */
  public FloatTensor out() {
    return FloatTensor.of(shape, out.clone());
  }

  /** The prepared reference y [B, C, S, S] the loop kept to, or null (sdedit, ...). */
  public FloatTensor reference() {
    return reference == null ? null : FloatTensor.of(shape, reference.clone());
  }

  /** float32 [B, H, W, C] in [0, 1]: {@code (out / 2 + 0.5).clamp(0, 1)}, as diffusers. */
  @Override
  public FloatTensor images() {
    int size = (int) shape[2];
    return FloatTensor.of(new long[] {shape[0], size, size, shape[1]},
        ImageOutput.denormalizeToNhwc(out, (int) shape[0], (int) shape[1], size, size));
  }

  /** The label of each image, or null for an unconditional model. */
  public long[] classLabels() {
    return classLabels == null ? null : classLabels.clone();
  }

  /** The UNet's timestep input of each step that ran. */
  public float[] timesteps() {
    return timesteps.clone();
  }

  public long seed() {
    return seed;
  }
}
