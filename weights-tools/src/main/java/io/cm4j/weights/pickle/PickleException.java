package io.cm4j.weights.pickle;

/**
 * A pickle stream the restricted unpickler refuses: a global outside the allow-list, a limit
 * exceeded, a malformed or truncated opcode. The message says what and at which byte offset;
 * readers wrap it in a {@link io.cm4j.weights.CheckpointException} naming the file.
 */
public final class PickleException extends Exception {
  private static final long serialVersionUID = 1L;

  public PickleException(String message) {
    super(message);
  }
}
