package io.cm4j.hub;

/**
 * A Hub download or cache lookup that failed. The message names the repository, the file (when
 * one is involved) and what went wrong: the HTTP status and the server's reason, the network
 * failure, or that offline mode is on and the cache lacks the file. {@link #kind()} lets a
 * caller map the failure to an exit code without parsing the message.
 */
public final class HubException extends Exception {
  private static final long serialVersionUID = 1L;

  /** What went wrong, coarsely. */
  public enum Kind {
    /** A malformed model ID, revision or file path (the caller's input). */
    INVALID_ARGUMENT,
    /** The repository, revision or required file does not exist (HTTP 404). */
    NOT_FOUND,
    /** The repository is private or gated, or the token was refused (HTTP 401/403). */
    ACCESS_DENIED,
    /** HF_HUB_OFFLINE is on and the cache does not hold what was asked for. */
    OFFLINE,
    /** The server could not be reached or the connection failed repeatedly. */
    NETWORK,
    /** The server answered with an unexpected status or without the Hub's headers. */
    SERVER,
    /** The downloaded bytes do not match the announced size or SHA-256. */
    CORRUPT,
    /** The cache folder could not be read or written. */
    IO
  }

  private final Kind kind;

  public HubException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public HubException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  /**
   * Whether the user's input or setup is at fault (a wrong ID, revision or token, offline with
   * an empty cache) rather than the network, the server or the disk: the CLI's exit code 2.
   */
  public boolean isBadInput() {
    switch (kind) {
      case INVALID_ARGUMENT:
      case NOT_FOUND:
      case ACCESS_DENIED:
      case OFFLINE:
        return true;
      default:
        return false;
    }
  }
}
