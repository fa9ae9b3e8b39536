package io.cm4j.serve;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.edit.EditRequest;
import io.cm4j.edit.EditResult;
import io.cm4j.edit.ImageEditor;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.StepLoop;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Serves {@link ConsistencyModelPipeline} generations and {@link ImageEditor} edits to many
 * threads at once, merging the UNet passes of concurrent requests into batches (dynamic
 * batching). An edit steps its own sample with the same UNet as a generation does, so the two
 * share passes.
 *
 * <p><b>Batching.</b> A worker thread per engine of its {@link EnginePool} (one engine unless
 * the service is built over a pool) takes the next batch and runs the pass on the least-loaded
 * engine; a request keeps its worker to its last step. Each request is a {@link StepLoop} (a
 * generation's {@link ConsistencyModelPipeline.Sampling} or an edit's
 * {@link io.cm4j.edit.Editing}): its own schedule and its own seeded generator, so
 * its latents and step noise never depend on other requests. Since the UNet takes a timestep
 * and a label per image, one pass can carry the next step of any set of requests, whatever
 * their seeds, labels, step counts or timesteps. A pass takes every request in progress, then
 * the oldest waiting ones while they fit in {@link ServiceOptions#maxBatch()} images (at most
 * {@link UNet#maxBatch()}); when room is left it waits up to {@link ServiceOptions#maxWait()}
 * for more. Passes are split back per
 * request, which then takes its own scheduler step.
 *
 * <p><b>Same images as alone.</b> A request gets exactly the images
 * {@link ConsistencyModelPipeline#generate} gives it alone, bit for bit, whatever it shared its
 * passes with: the CPU backend computes each image of a batch with the same arithmetic in the
 * same order (the GEMMs put images side by side in the N dimension, and each output column is
 * reduced over K in an order that does not depend on N; group norm and attention work per
 * image). {@code GenerationServiceTest} checks this on the tiny model.
 *
 * <p><b>Threads.</b> Thread-safe: {@link #submit}, {@link #stats()}, {@link #close()} and
 * {@link #closeNow()} may be called from any thread at any time. The engines are used by the
 * workers only, one pass per worker at a time. Futures are completed on the service's event thread (which
 * also fires deadlines): dependent stages added with non-async methods ({@code thenApply},
 * {@code whenComplete}) run there and delay other requests' completions, so give heavy work an
 * executor ({@code thenApplyAsync(f, executor)}). Where each request stands (queued, running,
 * done) is one {@link RequestState}, moved only by its compare-and-set: a worker's take and
 * result, the deadline, a cancel and closing race there and nowhere else.
 *
 * <p><b>Life.</b> The service owns its engines and frees their native memory when it
 * closes: {@link #close()} first finishes every accepted request, {@link #closeNow()} cancels
 * them. Both wait for the workers, so that on return every accepted future is done and the
 * native memory is freed. Closing twice is harmless; {@code submit} on a closed service throws
 * {@link IllegalStateException}.
 */
public final class GenerationService implements AutoCloseable {
  private enum State { RUNNING, DRAINING, CANCELLING, TERMINATED }

  private final EnginePool engines;
  private final ConsistencyModelPipeline pipeline; // the pool's first: latents, model facts
  private final ImageEditor editor;
  private final UNet unet;
  private final ServiceOptions options;
  private final int maxPassImages; // options.maxBatch(), at most what the model takes
  private final long maxWaitNanos;
  private final List<Thread> workers = new ArrayList<>();
  private int workersLeft; // guarded by lock
  /** Deadlines and future completions: one daemon thread, so the worker never runs callers' code. */
  private final ScheduledThreadPoolExecutor events;
  private volatile Thread eventThread;

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition(); // a request arrived, or closing began
  private final ArrayDeque<Job<?>> queue = new ArrayDeque<>(); // guarded by lock
  private State state = State.RUNNING; // guarded by lock
  private final AtomicIntegerArray inProgress; // per worker, written by that worker
  private volatile Throwable workerFailure;
  // Tests only: runs on the ending thread after a queued request ended and before it leaves
  // the queue, to hold it in the window where the worker may meet it ended in the queue.
  private volatile Runnable leftQueueHook;

  private final LongAdder submitted = new LongAdder();
  private final LongAdder rejected = new LongAdder();
  private final LongAdder completed = new LongAdder();
  private final LongAdder images = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final LongAdder cancelled = new LongAdder();
  private final LongAdder deadlineExceeded = new LongAdder();
  private final Histogram queueWait = new Histogram();
  private final Histogram batchImages = new Histogram();
  private final Histogram compute = new Histogram();
  private final Histogram latency = new Histogram();

  /** One accepted request: its state, and data that only the worker touches unless noted. */
  private final class Job<R> {
    final RequestState<R> state =
        new RequestState<>(GenerationService.this::deliver, this::leftQueue);
    final StepLoop<R> steps;
    final long submitNanos;
    final Duration deadline; // null: none
    final long deadlineNanos; // System.nanoTime() value; meaningful only with a deadline
    volatile ScheduledFuture<?> timer;
    volatile int stepsDone; // read by the event thread for deadline messages
    long readyNanos; // when it became ready for its next step

    Job(StepLoop<R> steps, long submitNanos, Duration deadline) {
      this.steps = steps;
      this.submitNanos = submitNanos;
      this.deadline = deadline;
      this.deadlineNanos = deadline == null ? 0 : submitNanos + saturatedNanos(deadline);
      this.readyNanos = submitNanos;
    }

    int images() {
      return steps.batchSize();
    }

    boolean expiredAt(long now) {
      return deadline != null && now - deadlineNanos >= 0;
    }

    /** Ends it with its result, once its last step is done. */
    void complete() {
      R result = steps.result();
      state.end(f -> f.complete(result));
    }

    void fail(Throwable error) {
      state.end(f -> f.completeExceptionally(error));
    }

    /** Ended while waiting (cancelled, expired, closed): frees its queue slot now. */
    private void leftQueue(RequestState<R> ended) {
      Runnable hook = leftQueueHook;
      if (hook != null) {
        hook.run();
      }
      lock.lock();
      try {
        queue.remove(this);
      } finally {
        lock.unlock();
      }
    }
  }

  /**
   * A service over {@code pipeline}, which it takes ownership of: {@link #close()} closes it.
   */
  public GenerationService(ConsistencyModelPipeline pipeline, ServiceOptions options) {
    this(new EnginePool(List.of(Objects.requireNonNull(pipeline, "pipeline"))), options);
  }

  /**
   * A service over every engine of {@code engines}, which it takes ownership of:
   * {@link #close()} closes them. A request gets the same images on any of them.
   */
  public GenerationService(EnginePool engines, ServiceOptions options) {
    this.engines = Objects.requireNonNull(engines, "engines");
    this.pipeline = engines.primary();
    this.options = Objects.requireNonNull(options, "options");
    this.unet = pipeline.unet();
    this.maxPassImages = Math.min(options.maxBatch(), unet.maxBatch());
    this.editor = ImageEditor.of(pipeline);
    this.maxWaitNanos = saturatedNanos(options.maxWait());
    events = new ScheduledThreadPoolExecutor(1, r -> {
      Thread t = new Thread(r, "cm4j-serve-events");
      t.setDaemon(true);
      eventThread = t;
      return t;
    });
    events.setRemoveOnCancelPolicy(true); // a finished request's deadline timer goes at once
    inProgress = new AtomicIntegerArray(engines.size());
    workersLeft = engines.size();
    for (int w = 0; w < engines.size(); w++) {
      int index = w;
      Thread worker = new Thread(() -> runWorker(index),
          "cm4j-serve-batcher" + (engines.size() == 1 ? "" : "-" + w));
      worker.setDaemon(true);
      workers.add(worker);
    }
    workers.forEach(Thread::start);
  }

  /**
   * A service over the model at {@code model} (as {@link ConsistencyModelPipeline#open(Path)}
   * takes it), on the CPU in float32.
   */
  public static GenerationService open(Path model, ServiceOptions options)
      throws IOException, Cm4jException {
    return open(model, Device.CPU, Precision.FP32, options);
  }

  /** A service over the model at {@code model} on {@code device}. */
  public static GenerationService open(Path model, Device device, Precision precision,
      ServiceOptions options) throws IOException, Cm4jException {
    return open(model, List.of(device), precision, options);
  }

  /** A service with one engine on each of {@code devices} (see {@link EnginePool}). */
  public static GenerationService open(Path model, List<Device> devices, Precision precision,
      ServiceOptions options) throws IOException, Cm4jException {
    EnginePool pool = EnginePool.open(model, devices, precision);
    try {
      return new GenerationService(pool, options);
    } catch (RuntimeException | Error e) {
      pool.close();
      throw e;
    }
  }

  /** {@link #submit(GenerationRequest, Duration)} with the default deadline of the options. */
  public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
    return submit(request, options.defaultDeadline());
  }

  /**
   * Queues a request. The returned future gives the images; {@code cancel} on it drops the
   * request (at once if it waits, after the UNet pass in flight if it is running). When the
   * deadline passes first, the future fails with a {@link DeadlineExceededException}.
   *
   * @param deadline how long from now the request may take; null: no deadline
   * @throws IllegalArgumentException when the request does not fit the model or the scheduler
   *     (as {@link ConsistencyModelPipeline#generate} says), or the deadline is not positive
   * @throws QueueFullException when {@link ServiceOptions#queueCapacity()} requests wait already
   * @throws IllegalStateException when the service is closed
   */
  public CompletableFuture<GenerationResult> submit(GenerationRequest request, Duration deadline) {
    Objects.requireNonNull(request, "request");
    checkSubmit(deadline);
    // checks the request; draws the latents
    return enqueue(pipeline.start(request), deadline);
  }

  /** {@link #submitEdit(EditRequest, Duration)} with the default deadline of the options. */
  public CompletableFuture<EditResult> submitEdit(EditRequest request) {
    return submitEdit(request, options.defaultDeadline());
  }

  /**
   * Queues an edit ({@link ImageEditor#edit(EditRequest)}); it shares UNet passes with
   * generations and other edits, and gets bit for bit the images it gets alone. Cancel,
   * deadline and queue as {@link #submit(GenerationRequest, Duration)}.
   *
   * @throws IllegalArgumentException when the request does not fit the task or the model
   *     (as {@link ImageEditor#start} says), or the deadline is not positive
   * @throws QueueFullException when {@link ServiceOptions#queueCapacity()} requests wait already
   * @throws IllegalStateException when the service is closed
   */
  public CompletableFuture<EditResult> submitEdit(EditRequest request, Duration deadline) {
    Objects.requireNonNull(request, "request");
    checkSubmit(deadline);
    // checks the request; prepares its reference and draws its initial sample
    return enqueue(editor.start(request), deadline);
  }

  private void checkSubmit(Duration deadline) {
    if (deadline != null && (deadline.isNegative() || deadline.isZero())) {
      throw new IllegalArgumentException("deadline: expected a positive duration, found "
          + deadline);
    }
    if (isClosed()) { // the clear message, before the work of starting the request
      throw closedError();
    }
  }

  private <R> CompletableFuture<R> enqueue(StepLoop<R> steps, Duration deadline) {
    Job<R> job = new Job<>(steps, System.nanoTime(), deadline);
    lock.lock();
    try {
      if (state != State.RUNNING) {
        throw closedError();
      }
      if (queue.size() >= options.queueCapacity()) {
        rejected.increment();
        throw new QueueFullException(options.queueCapacity());
      }
      queue.addLast(job);
      submitted.increment();
      changed.signal();
    } finally {
      lock.unlock();
    }
    CompletableFuture<R> future = job.state.future();
    future.whenComplete((result, error) -> finished(job, error));
    if (deadline != null) {
      try {
        ScheduledFuture<?> timer = events.schedule(() -> expire(job),
            Math.max(0, job.deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
        job.timer = timer;
        if (future.isDone()) {
          timer.cancel(false);
        }
      } catch (RejectedExecutionException e) {
        // closed meanwhile: the worker has finished or cancelled the request already
      }
    }
    return future;
  }

  /** Counts a request's outcome and stops its deadline timer. */
  private void finished(Job<?> job, Throwable error) {
    ScheduledFuture<?> timer = job.timer;
    if (timer != null) {
      timer.cancel(false);
    }
    if (error == null) {
      completed.increment();
      images.add(job.images());
      latency.record(System.nanoTime() - job.submitNanos);
      return;
    }
    Throwable cause = error instanceof CompletionException && error.getCause() != null
        ? error.getCause() : error;
    if (cause instanceof CancellationException) {
      cancelled.increment();
    } else if (cause instanceof DeadlineExceededException) {
      deadlineExceeded.increment();
    } else {
      failed.increment();
    }
  }

  /** Ends {@code job}, whose deadline passed, with a {@link DeadlineExceededException}. */
  private void expire(Job<?> job) {
    long waited = System.nanoTime() - job.submitNanos;
    int steps = job.stepsDone;
    String where = steps == 0 ? "before its first step"
        : "after " + steps + " of " + job.steps.numSteps() + " steps";
    DeadlineExceededException error = new DeadlineExceededException(String.format(Locale.ROOT,
        "deadline of %.1f ms exceeded after %.1f ms, %s", saturatedNanos(job.deadline) / 1e6,
        waited / 1e6, where));
    job.fail(error);
  }

  private IllegalStateException closedError() {
    Throwable f = workerFailure;
    return new IllegalStateException("GenerationService is closed"
        + (f == null ? "" : ": its worker failed: " + f));
  }

  /** Whether {@link #close()} or {@link #closeNow()} has been called (or the worker failed). */
  public boolean isClosed() {
    lock.lock();
    try {
      return state != State.RUNNING;
    } finally {
      lock.unlock();
    }
  }

  // ---- the worker ----

  private void runWorker(int w) {
    List<Job<?>> active = new ArrayList<>();
    try {
      while (true) {
        List<Job<?>> batch = nextBatch(w, active);
        if (batch == null) {
          return;
        }
        runPass(batch);
        active.clear();
        for (Job<?> job : batch) {
          if (!job.state.isDone()) {
            active.add(job);
          }
        }
        inProgress.set(w, active.size());
      }
    } catch (Throwable t) { // a bug: fail what is left rather than leave callers waiting
      workerFailure = t;
      for (Job<?> job : active) {
        job.fail(t);
      }
      active.clear();
    } finally {
      List<Job<?>> left = new ArrayList<>(active);
      lock.lock();
      try {
        inProgress.set(w, 0);
        if (--workersLeft == 0) { // the last worker: nothing runs the queue any more
          state = State.TERMINATED;
          left.addAll(queue);
        }
      } finally {
        lock.unlock();
      }
      for (Job<?> job : left) {
        job.fail(new CancellationException(
            "GenerationService closed before the request finished"));
      }
    }
  }

  /**
   * The requests of the next pass: every one in progress, then waiting ones while they fit;
   * waits for arrivals up to maxWait while there is room. Null when the worker should stop.
   */
  private List<Job<?>> nextBatch(int w, List<Job<?>> active) throws InterruptedException {
    lock.lock();
    try {
      while (true) {
        long now = System.nanoTime();
        active.removeIf(job -> {
          if (job.expiredAt(now)) {
            expire(job);
          }
          return job.state.isDone(); // cancelled or expired
        });
        if (state == State.CANCELLING) {
          return null;
        }
        int images = 0;
        for (Job<?> job : active) {
          images += job.images();
        }
        while (!queue.isEmpty()) {
          Job<?> next = queue.peekFirst();
          boolean runnable = !next.state.isDone() && !next.expiredAt(now);
          if (runnable && images > 0 && images + next.images() > maxPassImages) {
            break; // a request larger than maxBatch runs alone
          }
          queue.pollFirst();
          if (!runnable) {
            if (!next.state.isDone()) {
              expire(next); // not runnable and not ended: its deadline passed
            } // else cancelled while queued: dropped
          } else if (next.state.take()) { // false: it ended meanwhile
            queueWait.record(now - next.submitNanos);
            active.add(next);
            images += next.images();
          }
        }
        inProgress.set(w, active.size());
        if (!queue.isEmpty()) {
          changed.signal(); // what this pass leaves is for an idle worker
        }
        if (active.isEmpty()) {
          if (state != State.RUNNING) {
            return null; // closing, and nothing is left
          }
          changed.await();
          continue;
        }
        if (images >= maxPassImages || !queue.isEmpty() || state != State.RUNNING) {
          return new ArrayList<>(active);
        }
        long oldest = Long.MAX_VALUE;
        for (Job<?> job : active) {
          oldest = Math.min(oldest, job.readyNanos);
        }
        long left = oldest + maxWaitNanos - now;
        if (left <= 0) {
          return new ArrayList<>(active);
        }
        changed.awaitNanos(left);
      }
    } finally {
      lock.unlock();
    }
  }

  /** One UNet pass over the next step of every request of {@code batch}. */
  private void runPass(List<Job<?>> batch) {
    int images = 0;
    for (Job<?> job : batch) {
      images += job.images();
    }
    int channels = unet.inChannels();
    int size = unet.sampleSize();
    int perImage = channels * size * size;
    try {
      FloatTensor input = FloatTensor.zeros(images, channels, size, size); // [N, C, S, S]
      FloatBuffer in = input.buffer();
      float[] timesteps = new float[images];
      long[] labels = unet.isClassConditional() ? new long[images] : null;
      int at = 0;
      for (Job<?> job : batch) {
        StepLoop<?> s = job.steps;
        in.put(s.modelInput()); // [B, C, S, S] of this request
        Arrays.fill(timesteps, at, at + s.batchSize(), s.timestep());
        if (labels != null) {
          System.arraycopy(s.classLabels(), 0, labels, at, s.batchSize());
        }
        at += s.batchSize();
      }
      long computeStart = System.nanoTime();
      FloatBuffer out = engines.forward(input, timesteps, labels).buffer(); // [N, C, S, S]
      long end = System.nanoTime();
      compute.record(end - computeStart);
      batchImages.record(images);

      int offset = 0;
      for (Job<?> job : batch) {
        float[] modelOutput = new float[job.images() * perImage];
        out.get(offset, modelOutput);
        offset += modelOutput.length;
        if (job.state.isDone()) {
          continue; // cancelled or expired during the pass
        }
        try {
          job.steps.step(modelOutput);
          job.stepsDone++;
          job.readyNanos = end;
          if (job.steps.isDone()) {
            job.complete();
          }
        } catch (RuntimeException e) {
          job.fail(e);
        }
      }
    } catch (Exception | OutOfMemoryError e) { // a failed pass fails its requests only
      for (Job<?> job : batch) {
        job.fail(e);
      }
    }
  }

  /** Runs a completion on the event thread; inline once that has stopped. */
  private void deliver(Runnable completion) {
    try {
      events.execute(completion);
    } catch (RejectedExecutionException e) {
      completion.run();
    }
  }

  // ---- observability and model facts ----

  /** The counters and histograms so far. */
  public ServiceStats stats() {
    int queued;
    lock.lock();
    try {
      queued = queue.size();
    } finally {
      lock.unlock();
    }
    int running = 0;
    for (int w = 0; w < inProgress.length(); w++) {
      running += inProgress.get(w);
    }
    return new ServiceStats(submitted.sum(), rejected.sum(), completed.sum(), images.sum(),
        failed.sum(),
        cancelled.sum(), deadlineExceeded.sum(), queued, running, queueWait.snapshot(),
        batchImages.snapshot(), compute.snapshot(), latency.snapshot());
  }

  public ServiceOptions options() {
    return options;
  }

  /** Each engine's device, state and work so far. */
  public List<EnginePool.EngineStats> engineStats() {
    return engines.stats();
  }

  /** Height and width of the images ({@code sample_size}). */
  public int imageSize() {
    return unet.sampleSize();
  }

  /** Number of classes of a class-conditional model; 0 for an unconditional one. */
  public int numClassEmbeds() {
    return unet.numClassEmbeds();
  }

  /** The scheduler's {@code num_train_timesteps}: custom timesteps must lie below it. */
  public int numTrainTimesteps() {
    return pipeline.schedulerConfig().numTrainTimesteps();
  }

  /** The device the UNet runs on. */
  public Device device() {
    return unet.device();
  }

  /** The precision the UNet runs in. */
  public Precision precision() {
    return unet.precision();
  }

  /**
   * Bytes of native memory the UNets of every engine hold: packed weights and activation
   * arenas; 0 once the service is closed.
   */
  public long nativeBytes() {
    return engines.nativeBytes();
  }

  // ---- closing ----

  /**
   * Stops accepting requests, finishes every accepted one, then frees the UNet. Returns when
   * all is done. A second call waits likewise and does nothing more.
   */
  @Override
  public void close() {
    shutdown(State.DRAINING);
  }

  /** Tests only: see {@link #leftQueueHook}. */
  void setLeftQueueHookForTest(Runnable hook) {
    leftQueueHook = hook;
  }

  /**
   * Stops accepting requests, cancels the accepted ones (their futures fail with a
   * {@link CancellationException}), waits for the UNet pass in flight, then frees the UNet.
   */
  public void closeNow() {
    shutdown(State.CANCELLING);
  }

  private void shutdown(State mode) {
    lock.lock();
    try {
      if (state == State.RUNNING || (state == State.DRAINING && mode == State.CANCELLING)) {
        state = mode;
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    boolean interrupted = false;
    for (Thread worker : workers) {
      while (worker.isAlive()) {
        try {
          worker.join();
        } catch (InterruptedException e) {
          interrupted = true; // closing must not leave the native memory behind
        }
      }
    }
    engines.close();
    events.shutdown(); // completions already handed over still run
    if (Thread.currentThread() != eventThread) { // a callback may close the service
      while (!events.isTerminated()) {
        try {
          events.awaitTermination(1, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /** Nanoseconds, at most about 73 years: "forever", with room to add System.nanoTime(). */
  private static long saturatedNanos(Duration d) {
    long cap = Long.MAX_VALUE / 4;
    return d.compareTo(Duration.ofNanos(cap)) >= 0 ? cap : d.toNanos();
  }

  @Override
  public String toString() {
    return "GenerationService[" + pipeline + ", " + options + (isClosed() ? ", closed]" : "]");
  }
}
