package io.cm4j.serve;

import java.util.concurrent.TimeoutException;

/**
 * A request's deadline passed before its images were ready: the cause of the
 * {@code ExecutionException} its future's {@code get} throws. The request was dropped at that
 * moment (or, when a UNet pass was running it, as soon as that pass returned).
 */
public final class DeadlineExceededException extends TimeoutException {
  private static final long serialVersionUID = 1L;

  DeadlineExceededException(String message) {
    super(message);
  }
}
