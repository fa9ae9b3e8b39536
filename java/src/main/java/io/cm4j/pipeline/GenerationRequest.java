package io.cm4j.pipeline;

import io.cm4j.FloatTensor;
import java.util.Arrays;

/**
 * The arguments of one {@link ConsistencyModelPipeline#generate} call, named after diffusers'
 * {@code ConsistencyModelPipeline.__call__}: {@code batch_size}, {@code class_labels},
 * {@code num_inference_steps} or {@code timesteps}, the generator's seed, {@code latents}.
 * Immutable; build one with {@link #builder()}.
 *
 * <pre>{@code
 * GenerationRequest.builder().classLabels(145).timesteps(22, 0).seed(12).build()
 * }</pre>
 */
public final class GenerationRequest {
  private final int batchSize;
  private final long[] classLabels;
  private final Integer numInferenceSteps;
  private final int[] timesteps;
  private final long seed;
  private final FloatTensor latents;

  private GenerationRequest(int batchSize, long[] classLabels, Integer numInferenceSteps,
      int[] timesteps, long seed, FloatTensor latents) {
    this.batchSize = batchSize;
    this.classLabels = classLabels;
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = timesteps;
    this.seed = seed;
    this.latents = latents;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Number of images, at least 1. */
  public int batchSize() {
    return batchSize;
  }

  /**
   * One label per image, or null: then a class-conditional model gets labels drawn from the
   * seed (see {@link ConsistencyModelPipeline#randomClassLabels}). Unconditional models ignore
   * labels.
   */
  public long[] classLabels() {
    return classLabels == null ? null : classLabels.clone();
  }

  /** {@code num_inference_steps}, or null when custom {@link #timesteps()} are given. */
  public Integer numInferenceSteps() {
    return numInferenceSteps;
  }

  /** Custom training timesteps (strictly descending), or null. */
  public int[] timesteps() {
    return timesteps == null ? null : timesteps.clone();
  }

  /** Seed of the {@code torch.manual_seed}-compatible generator. */
  public long seed() {
    return seed;
  }

  /**
   * Given initial noise [B, C, S, S] (before scaling by sigma_max), or null to draw it. As in
   * diffusers, given latents leave the generator untouched: the step noise of a multistep
   * schedule then starts at the seed's first draw.
   */
  public FloatTensor latents() {
    return latents;
  }

  @Override
  public String toString() {
    return "GenerationRequest[batch " + batchSize + ", labels "
        + (classLabels == null ? "random" : Arrays.toString(classLabels))
        + (timesteps != null ? ", timesteps " + Arrays.toString(timesteps)
            : ", " + numInferenceSteps + (numInferenceSteps == 1 ? " step" : " steps"))
        + ", seed " + seed + (latents != null ? ", given latents" : "") + "]";
  }

  /**
   * Builds a request. Defaults: batch 1, random labels, one step ({@code num_inference_steps=1},
   * as diffusers), seed 0, latents drawn from the seed.
   */
  public static final class Builder {
    private int batchSize = 1;
    private boolean batchSizeSet;
    private long[] classLabels;
    private Integer numInferenceSteps;
    private int[] timesteps;
    private long seed;
    private FloatTensor latents;

    private Builder() {}

    public Builder batchSize(int batchSize) {
      if (batchSize < 1) {
        throw new IllegalArgumentException("batch size must be at least 1, found " + batchSize);
      }
      this.batchSize = batchSize;
      this.batchSizeSet = true;
      return this;
    }

    /**
     * One label per image; a single label applies to every image of the batch (diffusers
     * accepts an int for batch 1 only). Without {@link #batchSize}, the batch is one image per
     * label.
     */
    public Builder classLabels(long... labels) {
      if (labels.length == 0) {
        throw new IllegalArgumentException("expected at least one class label");
      }
      this.classLabels = labels.clone();
      return this;
    }

    /** {@code num_inference_steps}: evenly spaced training steps; excludes {@link #timesteps}. */
    public Builder numInferenceSteps(int steps) {
      this.numInferenceSteps = steps;
      return this;
    }

    /** Custom training timesteps, strictly descending; excludes {@link #numInferenceSteps}. */
    public Builder timesteps(int... timesteps) {
      this.timesteps = timesteps.clone();
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /**
     * Initial noise [B, C, S, S], scaled by sigma_max like diffusers' {@code latents}; the seed
     * then gives the step noise only, from its first draw on.
     */
    public Builder latents(FloatTensor latents) {
      this.latents = latents;
      return this;
    }

    /**
     * @throws IllegalArgumentException when both step options are set, or the labels do not
     *     give one per image (nor one for all)
     */
    public GenerationRequest build() {
      if (numInferenceSteps != null && timesteps != null) {
        throw new IllegalArgumentException(
            "Can only pass one of `num_inference_steps` or `timesteps`.");
      }
      Integer steps = numInferenceSteps == null && timesteps == null
          ? Integer.valueOf(1) : numInferenceSteps;
      int batch = batchSize;
      long[] labels = classLabels;
      if (labels != null) {
        if (!batchSizeSet) {
          batch = labels.length;
        } else if (labels.length == 1) {
          labels = new long[batch];
          Arrays.fill(labels, classLabels[0]);
        } else if (labels.length != batch) {
          throw new IllegalArgumentException("expected " + batch + " class labels (one per "
              + "image) or one for all, found " + labels.length);
        }
      }
      return new GenerationRequest(batch, labels == null ? null : labels.clone(), steps,
          timesteps == null ? null : timesteps.clone(), seed, latents);
    }
  }
}
