package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the reference data produced by diffusers and PyTorch lives: the system property
 * {@code cm4j.golden}, else {@code shared/golden} beside the repository (tests run in the module
 * directory, so that is {@code ../../shared/golden}; {@code ../shared/golden} from the root).
 */
final class GoldenFiles {
  private GoldenFiles() {}

  static Path dir() {
    String property = System.getProperty("cm4j.golden");
    if (property != null) {
      return Path.of(property);
    }
    for (String candidate : new String[] {"../../shared/golden", "../shared/golden"}) {
      Path p = Path.of(candidate);
      if (Files.isDirectory(p)) {
        return p;
      }
    }
    return fail("golden data not found: set -Dcm4j.golden or check out shared/golden beside"
        + " the repository (looked in ../../shared/golden and ../shared/golden from "
        + Path.of("").toAbsolutePath() + ")");
  }

  static Path file(String relative) {
    return dir().resolve(relative);
  }

  /** Largest |a - b| over all elements, after checking the lengths agree. */
  static double maxAbsDiff(float[] expected, float[] actual) {
    if (expected.length != actual.length) {
      fail("expected " + expected.length + " elements, found " + actual.length);
    }
    double max = 0;
    for (int i = 0; i < expected.length; i++) {
      max = Math.max(max, Math.abs((double) expected[i] - actual[i]));
    }
    return max;
  }

  /** Largest |a - b| / max(|a|, tiny) over all elements. */
  static double maxRelDiff(float[] expected, float[] actual) {
    if (expected.length != actual.length) {
      fail("expected " + expected.length + " elements, found " + actual.length);
    }
    double max = 0;
    for (int i = 0; i < expected.length; i++) {
      double scale = Math.max(Math.abs((double) expected[i]), Float.MIN_NORMAL);
      max = Math.max(max, Math.abs((double) expected[i] - actual[i]) / scale);
    }
    return max;
  }
}
