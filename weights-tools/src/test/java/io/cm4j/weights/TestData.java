package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What the tests of every package share: where the golden data is (../shared/golden), and float
 * tensors as the bytes a file stores and back.
 */
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

  /** Float32 values as stored bytes, in either order (Paddle files may be big-endian). */
  public static byte[] floats(ByteOrder order, float... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(order);
    for (float f : v) {
      b.putFloat(f);
    }
    return b.array();
  }

  /** A float32 tensor's values, as a reader hands them out (little-endian). */
  public static float[] floatsOf(TensorEntry t) {
    float[] out = new float[(int) t.numel()];
    t.data().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }
}
