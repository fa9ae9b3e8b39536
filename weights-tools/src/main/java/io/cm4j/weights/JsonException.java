package io.cm4j.weights;

/** Malformed JSON: the character offset where parsing stopped and why. */
public final class JsonException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final int offset;
  private final String reason;

  JsonException(int offset, String reason) {
    super("invalid JSON at offset " + offset + ": " + reason);
    this.offset = offset;
    this.reason = reason;
  }

  /** Offset of the offending character in the parsed text (0-based, in chars). */
  public int offset() {
    return offset;
  }

  /** What was wrong, without the offset. */
  public String reason() {
    return reason;
  }
}
