package io.cm4j.serve;

import java.util.concurrent.RejectedExecutionException;

/**
 * {@link GenerationService#submit} refused a request because as many requests as the queue
 * holds are already waiting: back-pressure, to retry later or report as overload (the HTTP
 * server answers 503).
 */
public final class QueueFullException extends RejectedExecutionException {
  private static final long serialVersionUID = 1L;

  private final int capacity;

  QueueFullException(int capacity) {
    super("generation queue full: " + capacity + " requests already waiting (queueCapacity "
        + capacity + "); retry later");
    this.capacity = capacity;
  }

  /** The queue's capacity in requests. */
  public int capacity() {
    return capacity;
  }
}
