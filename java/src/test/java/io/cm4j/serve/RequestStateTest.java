package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.serve.RequestState.Phase;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A request's phase under every interleaving of what the worker (take, result), the event
 * thread (deadline) and the caller (cancel) do to it: one outcome wins, the queue slot is freed
 * exactly when the request ends while queued, and nothing moves a finished request.
 */
class RequestStateTest {
  private enum Event { TAKE, CANCEL, EXPIRE, RESULT }

  /** Completions held back until {@link #runAll}: a busy event thread. */
  private static final class HeldExecutor implements Executor {
    final ArrayDeque<Runnable> held = new ArrayDeque<>();

    @Override
    public void execute(Runnable r) {
      held.add(r);
    }

    void runAll() {
      while (!held.isEmpty()) {
        held.poll().run();
      }
    }
  }

  /** The specification, written independently of {@link RequestState}. */
  private static final class Model {
    Phase phase = Phase.QUEUED;
    Event outcome;
    int leftQueue;

    boolean apply(Event e) {
      if (e == Event.TAKE) {
        if (phase != Phase.QUEUED) {
          return false;
        }
        phase = Phase.RUNNING;
        return true;
      }
      if (phase == Phase.DONE) {
        return false;
      }
      if (phase == Phase.QUEUED) {
        leftQueue++;
      }
      phase = Phase.DONE;
      outcome = e;
      return true;
    }
  }

  @Test
  void everyOrderOfFourEventsMatchesTheTransitionTable() throws Exception {
    Event[] events = Event.values();
    int n = events.length;
    int cases = 0;
    for (int code = 0; code < n * n * n * n; code++) {
      Event[] order = new Event[n];
      for (int i = 0, c = code; i < n; i++, c /= n) {
        order[i] = events[c % n];
      }
      for (boolean deliverAtOnce : new boolean[] {true, false}) {
        check(order, deliverAtOnce);
        cases++;
      }
    }
    assertEquals(512, cases);
  }

  private static void check(Event[] order, boolean deliverAtOnce) throws Exception {
    String where = List.of(order) + (deliverAtOnce ? ", delivered at once" : ", delivered late");
    HeldExecutor completions = new HeldExecutor();
    AtomicInteger leftQueue = new AtomicInteger();
    RequestState<String> state = new RequestState<>(completions, s -> leftQueue.incrementAndGet());
    Model model = new Model();
    boolean cancelled = false;
    for (Event e : order) {
      boolean moved = switch (e) {
        case TAKE -> state.take();
        case CANCEL -> {
          boolean wasDone = state.isDone();
          state.future().cancel(false); // the caller's cancel: its hook ends the request
          yield !wasDone && state.isDone();
        }
        case EXPIRE -> state.end(f -> f.completeExceptionally(
            new DeadlineExceededException("deadline")));
        case RESULT -> state.end(f -> f.complete("image"));
      };
      cancelled |= e == Event.CANCEL;
      assertEquals(model.apply(e), moved, where + ": " + e + " moved");
      assertEquals(model.phase, state.phase(), where + ": phase after " + e);
      assertEquals(model.leftQueue, leftQueue.get(), where + ": queue slot freed");
      if (deliverAtOnce) {
        completions.runAll();
      }
    }
    completions.runAll();
    CompletableFuture<String> f = state.future();
    if (model.outcome == null) {
      assertTrue(!f.isDone(), where + ": no outcome yet");
      return;
    }
    assertTrue(f.isDone(), where);
    // A cancel before the winner's outcome was delivered wins at the future (the caller gave
    // up); otherwise the future holds the outcome that moved the request to DONE.
    Event seen = f.isCancelled() ? Event.CANCEL
        : f.isCompletedExceptionally() ? Event.EXPIRE : Event.RESULT;
    if (seen != model.outcome) {
      assertEquals(Event.CANCEL, seen, where + ": outcome");
      assertTrue(!deliverAtOnce && cancelled, where + ": a late cancel only");
    }
    if (seen == Event.RESULT) {
      assertEquals("image", f.get());
    } else if (seen == Event.EXPIRE) {
      ExecutionException e = assertThrows(
          ExecutionException.class, f::get);
      assertInstanceOf(DeadlineExceededException.class, e.getCause(), where);
    }
  }

  @Test
  void racingThreadsLeaveExactlyOneOutcomeAndFreeTheSlotOnlyWhenEndedQueued()
      throws Exception {
    int requests = 2000;
    Executor atOnce = Runnable::run;
    for (int r = 0; r < requests; r++) {
      AtomicInteger leftQueue = new AtomicInteger();
      RequestState<String> state = new RequestState<>(atOnce, s -> leftQueue.incrementAndGet());
      CountDownLatch go = new CountDownLatch(1);
      boolean[] took = new boolean[1];
      boolean[] ended = new boolean[3];
      List<Thread> threads = new ArrayList<>();
      threads.add(new Thread(() -> {
        await(go);
        took[0] = state.take();
        if (took[0]) {
          ended[0] = state.end(f -> f.complete("image"));
        }
      }));
      threads.add(new Thread(() -> {
        await(go);
        ended[1] = state.end(f -> f.completeExceptionally(new DeadlineExceededException("d")));
      }));
      threads.add(new Thread(() -> {
        await(go);
        state.future().cancel(false);
      }));
      threads.forEach(Thread::start);
      go.countDown();
      for (Thread t : threads) {
        t.join();
      }
      assertEquals(Phase.DONE, state.phase());
      assertTrue(state.future().isDone());
      assertTrue(!(ended[0] && ended[1]), "two outcomes won");
      // The worker took it XOR it ended while queued (and freed its slot once).
      assertNotEquals(took[0], leftQueue.get() == 1, "take " + took[0] + ", slot freed "
          + leftQueue.get());
      assertTrue(leftQueue.get() <= 1);
      if (ended[0] && !state.future().isCancelled()) {
        assertEquals("image", state.future().get());
      }
      if (ended[1] && !state.future().isCancelled()) {
        ExecutionException e = assertThrows(
            ExecutionException.class, () -> state.future().get());
        assertInstanceOf(DeadlineExceededException.class, e.getCause());
      }
      if (!ended[0] && !ended[1]) {
        assertTrue(state.future().isCancelled());
        assertInstanceOf(CancellationException.class, cancelCause(state.future()));
      }
    }
  }

  private static Throwable cancelCause(CompletableFuture<String> f) {
    try {
      f.join();
      return null;
    } catch (CancellationException e) {
      return e;
    }
  }

  private static void await(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
