package io.cm4j.edit;

import io.cm4j.FloatTensor;
import java.util.Objects;

/**
 * The arguments of one edit, for {@link ImageEditor#edit}: the task, its inputs in model
 * range ([-1, 1], NCHW, the image {@code uint8 / 127.5 - 1}), and as in
 * {@code ConsistencyModelPipeline.generate} the class labels, seed and schedule. Unset values
 * take the task's defaults; {@link ImageEditor} checks everything against the model. Immutable;
 * build one with {@link #builder(EditTask)}.
 *
 * <pre>{@code
 * EditRequest.builder(EditTask.INPAINT).image(images).maskKeep(mask).classLabels(145).seed(3)
 *     .build()
 * }</pre>
 */
public final class EditRequest {
  private final EditTask task;
  private final FloatTensor image;
  private final FloatTensor maskKeep;
  private final long[] classLabels;
  private final long seed;
  private final Integer numInferenceSteps;
  private final int[] timesteps;
  private final Float sigma;
  private final boolean addNoise;
  private final double[] alphas;
  private final FloatTensor z1;
  private final FloatTensor z2;
  private final Integer patch;

  private EditRequest(Builder b) {
    task = b.task;
    image = b.image;
    maskKeep = b.maskKeep;
    classLabels = b.classLabels;
    seed = b.seed;
    numInferenceSteps = b.numInferenceSteps;
    timesteps = b.timesteps;
    sigma = b.sigma;
    addNoise = b.addNoise;
    alphas = b.alphas;
    z1 = b.z1;
    z2 = b.z2;
    patch = b.patch;
  }

  public static Builder builder(EditTask task) {
    return new Builder(task);
  }

  public EditTask task() {
    return task;
  }

  /**
   * [B, 3, H, W] in [-1, 1]: the image to edit (inpaint, colorize, sdedit's strokes, superres,
   * denoise); for superres H = W may also divide the model's size (a low-resolution image).
   * Null for interpolate.
   */
  public FloatTensor image() {
    return image;
  }

  /** [B, 1, H, W] of 0 and 1, 1 = keep the image's pixel (inpaint only). */
  public FloatTensor maskKeep() {
    return maskKeep;
  }

  /** One label per image, or null (a class-conditional model then draws them from the seed). */
  public long[] classLabels() {
    return classLabels == null ? null : classLabels.clone();
  }

  /** The seed of the {@code torch.manual_seed}-compatible generator all noise comes from. */
  public long seed() {
    return seed;
  }

  /** {@code num_inference_steps}, or null. */
  public Integer numInferenceSteps() {
    return numInferenceSteps;
  }

  /** Descending indices into the scheduler's schedule, or null. */
  public int[] timesteps() {
    return timesteps == null ? null : timesteps.clone();
  }

  /** Denoise: the noise level of the image, in [sigma_min, sigma_max]. */
  public Float sigma() {
    return sigma;
  }

  /**
   * Denoise: whether noise of that sigma is first added from the seed (the paper's denoising
   * demonstration and the golden case), or the image already carries it.
   */
  public boolean addNoise() {
    return addNoise;
  }

  /** Interpolate: the positions in [0, 1] between z1 (0) and z2 (1), one image each. */
  public double[] alphas() {
    return alphas == null ? null : alphas.clone();
  }

  /** Interpolate: the two [1, C, S, S] latents, or null to draw them from the seed. */
  public FloatTensor z1() {
    return z1;
  }

  public FloatTensor z2() {
    return z2;
  }

  /** Superres from a full-size image: the patch size (default 8); null for the default. */
  public Integer patch() {
    return patch;
  }

  /** Builds an {@link EditRequest}; every setter returns this builder. */
  public static final class Builder {
    private final EditTask task;
    private FloatTensor image;
    private FloatTensor maskKeep;
    private long[] classLabels;
    private long seed;
    private Integer numInferenceSteps;
    private int[] timesteps;
    private Float sigma;
    private boolean addNoise = true;
    private double[] alphas;
    private FloatTensor z1;
    private FloatTensor z2;
    private Integer patch;

    private Builder(EditTask task) {
      this.task = Objects.requireNonNull(task, "task");
    }

    public Builder image(FloatTensor image) {
      this.image = image;
      return this;
    }

    public Builder maskKeep(FloatTensor maskKeep) {
      this.maskKeep = maskKeep;
      return this;
    }

    public Builder classLabels(long... classLabels) {
      this.classLabels = classLabels == null ? null : classLabels.clone();
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    public Builder numInferenceSteps(Integer numInferenceSteps) {
      this.numInferenceSteps = numInferenceSteps;
      return this;
    }

    public Builder timesteps(int... timesteps) {
      this.timesteps = timesteps == null ? null : timesteps.clone();
      return this;
    }

    public Builder sigma(Float sigma) {
      this.sigma = sigma;
      return this;
    }

    public Builder addNoise(boolean addNoise) {
      this.addNoise = addNoise;
      return this;
    }

    public Builder alphas(double... alphas) {
      this.alphas = alphas == null ? null : alphas.clone();
      return this;
    }

    public Builder latents(FloatTensor z1, FloatTensor z2) {
      this.z1 = z1;
      this.z2 = z2;
      return this;
    }

    public Builder patch(Integer patch) {
      this.patch = patch;
      return this;
    }

    public EditRequest build() {
      return new EditRequest(this);
    }
  }
}
