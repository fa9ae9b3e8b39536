package io.cm4j;

import io.cm4j.internal.Cm4jNative;

/** Turns native status codes into {@link Cm4jException}s carrying cm4j_last_error(). */
final class NativeCalls {
  private NativeCalls() {}

  /**
   * Throws when {@code status} is not CM4J_OK. Must run on the thread that made the call, right
   * after it: the last-error string is thread-local.
   *
   * @param context prefixed to the native message (a file, a function), or null
   */
  static void check(int status, String function, String context) throws Cm4jException {
    if (status == 0) {
      return;
    }
    ErrorCode code = ErrorCode.fromStatus(status);
    String message = Cm4jNative.cm4j_last_error();
    if (message == null || message.isEmpty()) {
      message = function + " failed with " + code + " (status " + status + ")";
    }
    throw new Cm4jException(code, context == null ? message : context + ": " + message);
  }
}
