package io.cm4j;

/**
 * A failure of the UNet engine: an {@link ErrorCode} and a message that says what failed (for
 * native failures, the message of {@code cm4j_last_error()}). Input validation in Java reports
 * through this type too, with {@link ErrorCode#INVALID_ARGUMENT}.
 */
public class Cm4jException extends Exception {
  private static final long serialVersionUID = 1L;

  private final ErrorCode code;

  public Cm4jException(ErrorCode code, String message) {
    super(message);
    this.code = code;
  }

  public Cm4jException(ErrorCode code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public ErrorCode code() {
    return code;
  }
}
