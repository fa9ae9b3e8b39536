package io.cm4j.hub;

/**
 * Hears about file downloads. Only files actually fetched are reported (a cached file is
 * silent). The calls for one file come from the thread that downloads it, in the order
 * started, advanced..., then finished or aborted; an instance shared by concurrent downloads
 * must be thread-safe. Every method does nothing by default.
 */
public interface Progress {
  /** Reports nothing. */
  Progress NONE = new Progress() {};

  /**
   * A download of {@code path} begins: {@code total} bytes, of which {@code resumedFrom} are
   * already on disk from an interrupted earlier attempt.
   */
  default void started(String path, long total, long resumedFrom) {}

  /**
   * {@code bytesOnDisk} bytes of the file are now on disk. It drops back to 0 when the server
   * will not resume and the file starts over.
   */
  default void advanced(long bytesOnDisk) {}

  /** The file is complete, verified and in the cache. */
  default void finished(String path) {}

  /** The download failed; the exception follows. */
  default void aborted(String path) {}

  /** Reports nothing. */
  static Progress none() {
    return NONE;
  }

  /**
   * A progress bar on stderr (bytes, percent, rate, ETA) when the process has a terminal
   * ({@code System.console() != null}), else one line per downloaded file.
   */
  static Progress stderr() {
    return ConsoleProgress.forStderr();
  }
}
