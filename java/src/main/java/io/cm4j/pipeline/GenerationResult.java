package io.cm4j.pipeline;

import io.cm4j.FloatTensor;

/**
 * The images of one {@link ConsistencyModelPipeline#generate} call, with what made them: the
 * class labels used (drawn ones included) and the schedule. Immutable.
 */
public final class GenerationResult implements ImageBatch {
  private final float[] images; // [B, H, W, C] in [0, 1]
  private final int batch;
  private final int height;
  private final int width;
  private final int channels;
  private final long[] classLabels;
  private final float[] timesteps;
  private final long seed;

  GenerationResult(float[] images, int batch, int height, int width, int channels,
      long[] classLabels, float[] timesteps, long seed) {
    this.images = images;
    this.batch = batch;
    this.height = height;
    this.width = width;
    this.channels = channels;
    this.classLabels = classLabels;
    this.timesteps = timesteps;
    this.seed = seed;
  }

  /** Number of images. */
  public int batchSize() {
    return batch;
  }

  /** {@code [B, H, W, C]}. */
  public long[] shape() {
    return new long[] {batch, height, width, channels};
  }

  @Override
  public FloatTensor images() {
    return FloatTensor.of(shape(), images);
  }

  /** The same values as {@link #images()}, in a new array. */
  public float[] imageArray() {
    return images.clone();
  }

  @Override
  public byte[] toUint8() {
    return ImageOutput.toUint8(images); // without images()'s copy
  }

  /** The label of each image, or null for an unconditional model. */
  public long[] classLabels() {
    return classLabels == null ? null : classLabels.clone();
  }

  /** The scheduler's timesteps that were run (the UNet's timestep input), descending. */
  public float[] timesteps() {
    return timesteps.clone();
  }

  /** The seed the latents, step noise and any random labels came from. */
  public long seed() {
    return seed;
  }
}
