package io.cm4j.weights;

import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
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

  /** A read of a file, for {@link #reading}. */
  @FunctionalInterface
  public interface Read<T> {
    T run() throws IOException;
  }

  /**
   * Runs a read of {@code file}, its failures worded as every reader words them: a missing file
   * is "file not found", any other I/O failure "cannot read: ..." (cause kept), and what the read
   * already reported as a CheckpointException goes out unchanged.
   */
  public static <T> T reading(Path file, Read<T> read) throws CheckpointException {
    try {
      return read.run();
    } catch (NoSuchFileException e) {
      throw new CheckpointException(file, "file not found");
    } catch (CheckpointException e) {
      throw e;
    } catch (IOException e) {
      throw new CheckpointException(file, "cannot read: " + reason(e), e);
    }
  }

  /**
   * What an I/O failure says, for "cannot read: ..." or "cannot write: ..." after the file's
   * name: the system's reason alone for a file system error (its message would name the file,
   * maybe a staging one, again), else its message, or where it has none (an interrupted
   * thread's closed channel, for one) what happened, never "null".
   */
  public static String reason(IOException e) {
    if (e instanceof ClosedByInterruptException) {
      return "the reading thread was interrupted";
    }
    if (e instanceof FileSystemException f && f.getReason() != null) {
      return f.getReason();
    }
    String m = e.getMessage();
    return m != null && !m.isBlank() ? m : e.getClass().getSimpleName();
  }
}
