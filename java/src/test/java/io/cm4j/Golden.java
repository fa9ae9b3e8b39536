package io.cm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;

/** Locates ../shared/golden (the pom passes it as cm4j.golden) and compares against it. */
public final class Golden {
  /** CPU float32 bound of the golden README: relative L2 error of every output. */
  public static final double CPU_FP32_TOLERANCE = 1e-4;

  private Golden() {}

  /** The golden folder: -Dcm4j.golden, else ../shared/golden above the working directory. */
  public static Path dir() {
    String property = System.getProperty("cm4j.golden");
    if (property != null && !property.isBlank()) {
      return Path.of(property).toAbsolutePath().normalize();
    }
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path candidate = p.resolve("../shared/golden").normalize();
      if (Files.isDirectory(candidate)) {
        return candidate;
      }
    }
    throw new IllegalStateException("golden data not found: set -Dcm4j.golden");
  }

  public static Path file(String relative) {
    Path p = dir().resolve(relative);
    assertTrue(Files.exists(p), "missing golden file " + p);
    return p;
  }

  /** ||out - ref|| / ||ref|| in double precision (0 when both are all zeros). */
  public static double relativeL2(float[] out, float[] ref) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < ref.length; i++) {
      double d = (double) out[i] - ref[i];
      num += d * d;
      den += (double) ref[i] * ref[i];
    }
    if (den == 0) {
      return num == 0 ? 0 : Double.POSITIVE_INFINITY;
    }
    return Math.sqrt(num) / Math.sqrt(den);
  }

  /**
   * The relative L2 error of {@code actual} against the golden tensor {@code name}, after
   * asserting the shapes agree; printed so test logs show every error.
   */
  public static double error(String what, SafetensorsFile expected, String name,
      FloatTensor actual) throws CheckpointException {
    long[] shape = expected.get(name).shape();
    assertArrayEquals(shape, actual.shape(), what + " " + name + ": shape");
    double err = relativeL2(actual.toArray(), expected.floats(name));
    System.out.printf("golden %s %s: relative L2 error %.3e%n", what, name, err);
    return err;
  }

  /** Asserts {@link #error} is within {@code tolerance}; returns it. */
  public static double assertClose(String what, SafetensorsFile expected, String name,
      FloatTensor actual, double tolerance) throws CheckpointException {
    double err = error(what, expected, name, actual);
    assertTrue(err <= tolerance, what + " " + name + ": relative L2 error " + err
        + " exceeds " + tolerance);
    return err;
  }
}
