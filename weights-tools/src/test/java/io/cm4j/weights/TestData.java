package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;

/**
 * What the tests of every package share: where the golden data is (../shared/golden), float
 * tensors as the bytes a file stores and back, and files that are not regular ones.
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

  /** Makes a FIFO at {@code path} with mkfifo; skips the test where there is none. */
  public static Path mkfifo(Path path) throws IOException, InterruptedException {
    assumePosix();
    Process p;
    try {
      p = new ProcessBuilder("mkfifo", path.toString()).redirectErrorStream(true).start();
    } catch (IOException e) {
      assumeTrue(false, "no mkfifo: " + e.getMessage());
      throw e;
    }
    assumeTrue(p.waitFor() == 0, "mkfifo " + path + " failed");
    return path;
  }

  /** Whether {@code path} is there and is neither a regular file, a folder nor a link. */
  public static boolean isOther(Path path) throws IOException {
    return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
        .isOther();
  }

  /** The permissions a plain create gives a new file in {@code dir}: 0666 less the umask. */
  public static Set<PosixFilePermission> plainCreatePermissions(Path dir) throws IOException {
    assumePosix();
    Path probe = Files.createFile(dir.resolve(".plain-create-probe"));
    try {
      return Files.getPosixFilePermissions(probe);
    } finally {
      Files.delete(probe);
    }
  }

  private static void assumePosix() {
    assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"),
        "not a POSIX file system");
  }
}
