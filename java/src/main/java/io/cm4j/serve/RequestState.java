package io.cm4j.serve;

import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * Where one accepted request of a {@link GenerationService} stands, and the one method that
 * moves it ({@link #move}). Three kinds of threads act on a request: the worker takes it from
 * the queue and ends it with its images or a failure, the event thread ends it when its
 * deadline passes, and its caller (or closing) cancels it. Every one of them goes through
 * {@code move}, a compare-and-set, so exactly one outcome wins and the loser learns it:
 *
 * <pre>
 *   QUEUED --take--> RUNNING
 *   QUEUED or RUNNING --end--> DONE     images, failure, cancel, deadline, closing
 * </pre>
 *
 * A caller's {@code future.cancel} completes the future directly; the future's completion
 * hook then ends the request, so a cancel is one more {@code end} racing the others.
 *
 * @param <T> what the request produces
 */
final class RequestState<T> {
  enum Phase { QUEUED, RUNNING, DONE }

  private final AtomicReference<Phase> phase = new AtomicReference<>(Phase.QUEUED);
  private final CompletableFuture<T> future = new CompletableFuture<>();
  private final Executor completions;
  private final Consumer<RequestState<T>> leftQueue;

  /**
   * @param completions where outcomes are delivered to the future (the event thread)
   * @param leftQueue called once when the request ends while queued: frees its queue slot
   */
  RequestState(Executor completions, Consumer<RequestState<T>> leftQueue) {
    this.completions = Objects.requireNonNull(completions, "completions");
    this.leftQueue = Objects.requireNonNull(leftQueue, "leftQueue");
    future.whenComplete((result, error) -> end(f -> { })); // a cancel by the caller
  }

  CompletableFuture<T> future() {
    return future;
  }

  /** Where it stands: what RequestStateTest's model check compares after every move. */
  Phase phase() {
    return phase.get();
  }

  boolean isDone() {
    return phase.get() == Phase.DONE;
  }

  /** QUEUED to RUNNING, by the worker. False when the request ended while it waited. */
  boolean take() {
    return move(Phase.RUNNING, null);
  }

  /**
   * To DONE with {@code outcome} applied to the future on the completion executor. False when
   * the request had ended already: then {@code outcome} is dropped.
   */
  boolean end(Consumer<CompletableFuture<T>> outcome) {
    return move(Phase.DONE, Objects.requireNonNull(outcome, "outcome"));
  }

  /** The only place the phase changes. */
  private boolean move(Phase to, Consumer<CompletableFuture<T>> outcome) {
    Phase from;
    do {
      from = phase.get();
      boolean legal = to == Phase.RUNNING ? from == Phase.QUEUED : from != Phase.DONE;
      if (!legal) {
        return false;
      }
    } while (!phase.compareAndSet(from, to));
    if (to == Phase.DONE) {
      if (from == Phase.QUEUED) {
        leftQueue.accept(this);
      }
      completions.execute(() -> outcome.accept(future));
    }
    return true;
  }
}
