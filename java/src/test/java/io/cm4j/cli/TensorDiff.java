package io.cm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Comparing the CLI's float outputs with golden ones. */
final class TensorDiff {
  private TensorDiff() {}

  /** Largest |expected - actual| over all elements, after checking the lengths agree. */
  static double maxAbsDiff(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    double max = 0;
    for (int i = 0; i < expected.length; i++) {
      max = Math.max(max, Math.abs((double) expected[i] - actual[i]));
    }
    return max;
  }
}
