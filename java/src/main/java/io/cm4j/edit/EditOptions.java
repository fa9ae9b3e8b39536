package io.cm4j.edit;

/**
 * What every task takes besides its inputs, as {@code ConsistencyModelPipeline.generate} does:
 * class labels (null: drawn from the seed for a class-conditional model), the generator's
 * seed, and {@code numInferenceSteps} or {@code timesteps} (both null: the task's default).
 */
public record EditOptions(long[] classLabels, long seed, Integer numInferenceSteps,
    int[] timesteps) {
  /** The seed alone: drawn labels, the task's default schedule. */
  public static EditOptions seed(long seed) {
    return new EditOptions(null, seed, null, null);
  }

  EditRequest.Builder apply(EditRequest.Builder b) {
    return b.classLabels(classLabels).seed(seed).numInferenceSteps(numInferenceSteps)
        .timesteps(timesteps);
  }
}
