package io.cm4j.pipeline;

import io.cm4j.FloatTensor;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The images of one {@link ConsistencyModelPipeline#generate} call, with what made them: the
 * class labels used (drawn ones included) and the schedule. Immutable.
 */
public final class GenerationResult {
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

  /**
   * The images as diffusers' {@code output_type="np"}: float32 [B, H, W, C] in [0, 1]
   * ({@code (sample / 2 + 0.5).clamp(0, 1)}).
   */
  public FloatTensor images() {
    return FloatTensor.of(shape(), images);
  }

  /** The same values as {@link #images()}, in a new array. */
  public float[] imageArray() {
    return images.clone();
  }

  /** 8-bit pixels [B, H, W, C]: {@code round(image * 255)}, read with {@code & 0xff}. */
  public byte[] toUint8() {
    return ImageOutput.toUint8(images);
  }

  /** The images as diffusers' {@code output_type="pil"} would give them. */
  public List<BufferedImage> toBufferedImages() {
    return ImageOutput.toBufferedImages(toUint8(), batch, height, width, channels);
  }

  /** Writes image {@code index} as a PNG, atomically (see {@link ImageOutput#writePng}). */
  public void writePng(int index, Path file) throws IOException {
    ImageOutput.writePng(toBufferedImages().get(index), file);
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
