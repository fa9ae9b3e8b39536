package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the tests of every package find the golden data (../shared/golden). */
public final class TestData {
  private TestData() {}

  public static Path golden() {
    Path p = Path.of(System.getProperty("cm4j.golden", "../../shared/golden"));
    assertTrue(Files.isDirectory(p), "golden data not found at " + p.toAbsolutePath());
    return p;
  }

  /** The tiny model's diffusers UNet folder. */
  public static Path tinyUnet() {
    return golden().resolve("tiny/pipeline/unet");
  }
}
