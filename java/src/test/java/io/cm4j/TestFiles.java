package io.cm4j;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;

/**
 * Files that are not regular ones, and the permissions a plain create gives, for the tests of
 * how outputs are written (as weights-tools' TestData has them, which this module cannot see).
 */
public final class TestFiles {
  private TestFiles() {}

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
