package io.cm4j.weights;

import java.io.IOException;
import java.nio.file.Path;

/**
 * An output that could not be written (a full disk, a folder gone while writing): the message
 * names what the caller asked to write and says why. Unlike a {@link CheckpointException} it is
 * no fault of the input, so a command fails with it as with any I/O failure (exit code 1), but
 * its message is meant for the user as it is.
 */
public class OutputException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;

  public OutputException(Path file, String problem, Throwable cause) {
    super(file + ": " + problem, cause);
    this.file = file;
  }

  /** The file or folder that was being written. */
  public Path file() {
    return file;
  }
}
