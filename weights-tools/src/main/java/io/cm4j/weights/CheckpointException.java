package io.cm4j.weights;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A checkpoint (or config) file that cannot be used: the message names the file and says what
 * is wrong with it. An {@link IOException} because, to a caller, a corrupt file is one more way
 * reading a file can fail.
 */
public class CheckpointException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;

  public CheckpointException(Path file, String problem) {
    super(file + ": " + problem);
    this.file = file;
  }

  public CheckpointException(Path file, String problem, Throwable cause) {
    super(file + ": " + problem, cause);
    this.file = file;
  }

  /** The file the problem is in. */
  public Path file() {
    return file;
  }
}
