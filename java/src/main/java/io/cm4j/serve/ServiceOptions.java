package io.cm4j.serve;

import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link GenerationService} batches and queues. Immutable; build one with
 * {@link #builder()}.
 *
 * <pre>{@code
 * ServiceOptions.builder().maxBatch(16).maxWait(Duration.ofMillis(2)).queueCapacity(256).build()
 * }</pre>
 */
public final class ServiceOptions {
  /** 16 images per UNet pass, 2 ms wait, 256 waiting requests, no deadline. */
  public static final ServiceOptions DEFAULT = builder().build();

  private final int maxBatch;
  private final Duration maxWait;
  private final int queueCapacity;
  private final Duration defaultDeadline;

  private ServiceOptions(Builder b) {
    this.maxBatch = b.maxBatch;
    this.maxWait = b.maxWait;
    this.queueCapacity = b.queueCapacity;
    this.defaultDeadline = b.defaultDeadline;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * Most images in one UNet pass. 1 turns batching off: each pass runs one request. A request
   * of more images than this runs alone, in passes of its own size.
   */
  public int maxBatch() {
    return maxBatch;
  }

  /**
   * Longest a pass waits for more requests once it has one and room for more, counted from
   * when the oldest of its requests became ready (submitted, or finished its previous step).
   */
  public Duration maxWait() {
    return maxWait;
  }

  /** Most requests waiting for their first step; {@code submit} refuses more. */
  public int queueCapacity() {
    return queueCapacity;
  }

  /** Deadline of requests submitted without one, from submit; null: none. */
  public Duration defaultDeadline() {
    return defaultDeadline;
  }

  @Override
  public String toString() {
    return "ServiceOptions[maxBatch " + maxBatch + ", maxWait " + maxWait.toNanos() / 1e6
        + " ms, queueCapacity " + queueCapacity + ", defaultDeadline "
        + (defaultDeadline == null ? "none" : defaultDeadline.toMillis() + " ms") + "]";
  }

  public static final class Builder {
    private int maxBatch = 16;
    private Duration maxWait = Duration.ofMillis(2);
    private int queueCapacity = 256;
    private Duration defaultDeadline;

    private Builder() {}

    /** @see ServiceOptions#maxBatch() */
    public Builder maxBatch(int images) {
      if (images < 1) {
        throw new IllegalArgumentException("maxBatch: expected at least 1, found " + images);
      }
      this.maxBatch = images;
      return this;
    }

    /** @see ServiceOptions#maxWait() */
    public Builder maxWait(Duration wait) {
      Objects.requireNonNull(wait, "maxWait");
      if (wait.isNegative()) {
        throw new IllegalArgumentException("maxWait: expected 0 or more, found " + wait);
      }
      this.maxWait = wait;
      return this;
    }

    /** @see ServiceOptions#queueCapacity() */
    public Builder queueCapacity(int requests) {
      if (requests < 1) {
        throw new IllegalArgumentException("queueCapacity: expected at least 1, found "
            + requests);
      }
      this.queueCapacity = requests;
      return this;
    }

    /** @see ServiceOptions#defaultDeadline(); null for none. */
    public Builder defaultDeadline(Duration deadline) {
      if (deadline != null && (deadline.isNegative() || deadline.isZero())) {
        throw new IllegalArgumentException("defaultDeadline: expected a positive duration, "
            + "found " + deadline);
      }
      this.defaultDeadline = deadline;
      return this;
    }

    public ServiceOptions build() {
      return new ServiceOptions(this);
    }
  }
}
