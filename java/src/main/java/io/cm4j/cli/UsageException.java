package io.cm4j.cli;

/** Bad usage or bad input: exit code 2 with this message, which names the argument or file. */
final class UsageException extends Exception {
  private static final long serialVersionUID = 1L;

  UsageException(String message) {
    super(message);
  }

  UsageException(String message, Throwable cause) {
    super(message, cause);
  }

  /** Refuses a count or limit below 1, as "--queue 0: expected at least 1". */
  static void checkAtLeastOne(String option, long value) throws UsageException {
    if (value < 1) {
      throw new UsageException(option + " " + value + ": expected at least 1");
    }
  }
}
