package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.FloatTensor;
import io.cm4j.UNet;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import io.cm4j.pipeline.TorchGenerator;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The batching service on the tiny model: every request gets bit for bit the images it gets
 * alone, whatever it was batched with; cancellation, deadlines, back-pressure and closing
 * never leave a caller waiting.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class GenerationServiceTest {
  private static Tiny tiny;

  @BeforeAll
  static void open() throws Exception {
    tiny = new Tiny();
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  private static GenerationService service(ServiceOptions options) throws Exception {
    return GenerationService.open(Tiny.model(), options);
  }

  /**
   * What the service relies on: an image's UNet output does not depend on the other images of
   * its batch, bit for bit (CPU backend: images side by side in the GEMM's N dimension).
   */
  @Test
  void aBatchedPassGivesEachImageBitForBitItsOutputAlone() throws Exception {
    UNet unet = tiny.reference().unet();
    int size = unet.sampleSize();
    int batch = 7; // odd, so tails of the N blocking differ from the single-image passes
    int perImage = 3 * size * size;
    float[] x = new TorchGenerator(5).randn(batch, 3, size, size);
    float[] t = new float[batch];
    long[] labels = new long[batch];
    for (int i = 0; i < batch; i++) {
      t[i] = -150f + 97.5f * i; // a mix of steps, as concurrent requests bring
      labels[i] = (211L * i) % 1000;
    }
    float[] together = unet.forward(FloatTensor.of(new long[] {batch, 3, size, size}, x), t,
        labels).toArray();
    for (int i = 0; i < batch; i++) {
      float[] one = new float[perImage];
      System.arraycopy(x, i * perImage, one, 0, perImage);
      float[] alone = unet.forward(FloatTensor.of(new long[] {1, 3, size, size}, one),
          new float[] {t[i]}, new long[] {labels[i]}).toArray();
      for (int k = 0; k < perImage; k++) {
        assertEquals(Float.floatToRawIntBits(alone[k]),
            Float.floatToRawIntBits(together[i * perImage + k]),
            "image " + i + " of the batch, value " + k);
      }
    }
  }

  @Test
  void sixteenThreadsOfFiftyRequestsGetTheImagesTheyGetAlone() throws Exception {
    for (int i = 0; i < Tiny.COMBOS; i++) {
      tiny.alone(i); // the references first, outside the timed part
    }
    int threads = 16;
    int perThread = 50;
    ServiceOptions options = ServiceOptions.builder().maxBatch(16)
        .maxWait(Duration.ofMillis(2)).queueCapacity(threads * perThread).build();
    long start = System.nanoTime();
    ServiceStats stats;
    try (GenerationService service = service(options)) {
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      try {
        List<Future<Integer>> checked = new ArrayList<>();
        for (int th = 0; th < threads; th++) {
          int thread = th;
          checked.add(pool.submit(() -> {
            // each thread keeps 4 requests in flight: mixed seeds, classes and schedules
            List<CompletableFuture<GenerationResult>> window = new ArrayList<>();
            List<Integer> combos = new ArrayList<>();
            int done = 0;
            for (int r = 0; r < perThread; r++) {
              int combo = thread * 7 + r * 5;
              window.add(service.submit(Tiny.request(combo)));
              combos.add(combo);
              if (window.size() == 4 || r == perThread - 1) {
                for (int k = 0; k < window.size(); k++) {
                  tiny.assertSameAsAlone(combos.get(k), window.get(k).get(60, TimeUnit.SECONDS));
                  done++;
                }
                window.clear();
                combos.clear();
              }
            }
            return done;
          }));
        }
        int total = 0;
        for (Future<Integer> f : checked) {
          total += f.get(80, TimeUnit.SECONDS);
        }
        assertEquals(threads * perThread, total);
      } finally {
        pool.shutdownNow();
      }
      awaitTrue(() -> service.stats().completed() == threads * perThread, "completion counts");
      stats = service.stats();
    }
    System.out.printf("16 threads x 50 requests on the tiny model: %.1f s; %s%n",
        (System.nanoTime() - start) / 1e9, stats);
    assertEquals(threads * perThread, stats.submitted());
    assertEquals(0, stats.failed() + stats.cancelled() + stats.deadlineExceeded());
    assertTrue(stats.batchImages().max() <= 16, "images per pass " + stats.batchImages().max());
    assertTrue(stats.batchImages().max() > 1, "no pass batched two requests: " + stats);
    assertTrue(stats.unetPasses() < stats.batchImages().sum(), "passes " + stats.unetPasses()
        + " for " + stats.batchImages().sum() + " image steps");
  }

  @Test
  void cancellationAndDeadlineStormsEndEveryRequestAndLeaveTheServiceWorking()
      throws Exception {
    int threads = 8;
    int perThread = 40;
    ServiceOptions options = ServiceOptions.builder().maxBatch(8).queueCapacity(1000).build();
    try (GenerationService service = service(options)) {
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
      List<Integer> combos = new ArrayList<>();
      try {
        List<Future<?>> submitters = new ArrayList<>();
        for (int th = 0; th < threads; th++) {
          int thread = th;
          submitters.add(pool.submit(() -> {
            ThreadLocalRandom random = ThreadLocalRandom.current();
            for (int r = 0; r < perThread; r++) {
              int combo = thread * 3 + r;
              CompletableFuture<GenerationResult> f;
              switch (random.nextInt(4)) {
                case 0: // cancelled at once, while queued
                  f = service.submit(Tiny.request(combo));
                  f.cancel(true);
                  break;
                case 1: // cancelled a little later, maybe during its UNet pass
                  f = service.submit(Tiny.request(combo));
                  sleepMicros(random.nextInt(20_000));
                  f.cancel(true);
                  break;
                case 2: // a deadline from 1 microsecond to 30 ms
                  f = service.submit(Tiny.request(combo),
                      Duration.ofNanos(1000 + random.nextInt(30_000_000)));
                  break;
                default:
                  f = service.submit(Tiny.request(combo));
              }
              synchronized (futures) {
                futures.add(f);
                combos.add(combo);
              }
              service.stats(); // readers at the same time
            }
            return null;
          }));
        }
        for (Future<?> s : submitters) {
          s.get(60, TimeUnit.SECONDS);
        }
      } finally {
        pool.shutdownNow();
      }
      int ok = 0;
      int cancelled = 0;
      int expired = 0;
      for (int i = 0; i < futures.size(); i++) {
        try {
          tiny.assertSameAsAlone(combos.get(i), futures.get(i).get(60, TimeUnit.SECONDS));
          ok++;
        } catch (CancellationException e) {
          cancelled++;
        } catch (ExecutionException e) {
          DeadlineExceededException d = assertInstanceOf(DeadlineExceededException.class,
              e.getCause());
          assertTrue(d.getMessage().startsWith("deadline of "), d.getMessage());
          expired++;
        }
      }
      int total = threads * perThread;
      awaitTrue(() -> service.stats().finished() == total, "outcome counts");
      ServiceStats stats = service.stats();
      System.out.printf("storm: %d completed, %d cancelled, %d past their deadline; %s%n", ok,
          cancelled, expired, stats);
      assertEquals(total, ok + cancelled + expired);
      assertEquals(ok, stats.completed());
      assertEquals(cancelled, stats.cancelled());
      assertEquals(expired, stats.deadlineExceeded());
      assertEquals(0, stats.queued());
      // still serving
      tiny.assertSameAsAlone(3, service.submit(Tiny.request(3)).get(30, TimeUnit.SECONDS));
    }
  }

  @Test
  void aRequestCancelledWhileQueuedIsDroppedAndTheWorkerCarriesOn() throws Exception {
    // maxBatch 1: the later requests wait in the queue while the first runs and are cancelled
    // there. A cancel takes a request out of the queue just after ending it, so the worker
    // may also meet it ended in the queue: the storm test once caught the worker treating
    // such a request (no deadline) as expired and failing on its missing deadline.
    ServiceOptions options = ServiceOptions.builder().maxBatch(1).build();
    try (GenerationService service = service(options)) {
      CompletableFuture<GenerationResult> first = service.submit(Tiny.request(1));
      for (int i = 0; i < 5; i++) {
        service.submit(Tiny.request(2)).cancel(true);
      }
      CompletableFuture<GenerationResult> last = service.submit(Tiny.request(3));
      tiny.assertSameAsAlone(1, first.get(30, TimeUnit.SECONDS));
      tiny.assertSameAsAlone(3, last.get(30, TimeUnit.SECONDS));
      assertEquals(5, service.stats().cancelled());
    }
  }

  @Test
  void theWorkerDropsARequestThatEndedButIsStillInTheQueue() throws Exception {
    // The window the test above can only hope to hit, held open: the cancelled request has
    // ended but not yet left the queue (the cancelling thread waits in the hook) while the
    // worker runs the requests around it. As above, the cancel comes right after submit,
    // long before the first request's pass ends.
    ServiceOptions options = ServiceOptions.builder().maxBatch(1).build();
    try (GenerationService service = service(options)) {
      CountDownLatch ended = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      service.setLeftQueueHookForTest(() -> {
        ended.countDown();
        try {
          release.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      ExecutorService checker = Executors.newSingleThreadExecutor(); // before: no delay below
      CompletableFuture<GenerationResult> first = service.submit(Tiny.request(1));
      CompletableFuture<GenerationResult> dropped = service.submit(Tiny.request(2));
      CompletableFuture<GenerationResult> last = service.submit(Tiny.request(3));
      try {
        Future<?> checked = checker.submit(() -> {
          try {
            assertTrue(ended.await(30, TimeUnit.SECONDS), "the cancel never ended the request");
            tiny.assertSameAsAlone(1, first.get(30, TimeUnit.SECONDS));
            tiny.assertSameAsAlone(3, last.get(30, TimeUnit.SECONDS)); // past the ended one
          } finally {
            release.countDown();
          }
          return null;
        });
        dropped.cancel(true); // returns once the checker has seen both others finish
        checked.get(60, TimeUnit.SECONDS);
      } finally {
        release.countDown();
        checker.shutdownNow();
      }
      assertTrue(dropped.isCancelled());
      assertEquals(1, service.stats().cancelled());
      assertEquals(0, service.stats().failed() + service.stats().deadlineExceeded());
    }
  }

  @Test
  void aFullQueueRejectsWithAClearException() throws Exception {
    ServiceOptions options = ServiceOptions.builder().maxBatch(1).queueCapacity(3).build();
    try (GenerationService service = service(options)) {
      List<CompletableFuture<GenerationResult>> accepted = new ArrayList<>();
      QueueFullException refused = null;
      for (int i = 0; i < 40 && refused == null; i++) {
        try {
          accepted.add(service.submit(Tiny.request(i)));
        } catch (QueueFullException e) {
          refused = e;
        }
      }
      assertTrue(refused != null, "40 requests fit in a queue of 3");
      assertInstanceOf(RejectedExecutionException.class, refused);
      assertEquals(3, refused.capacity());
      assertTrue(refused.getMessage().contains("queue full"), refused.getMessage());
      for (int i = 0; i < accepted.size(); i++) {
        tiny.assertSameAsAlone(i, accepted.get(i).get(30, TimeUnit.SECONDS));
      }
      assertEquals(1, service.stats().rejected());
    }
  }

  @Test
  void aMissedDeadlineFailsWithATimeoutException() throws Exception {
    ServiceOptions options = ServiceOptions.builder().maxBatch(1).build();
    try (GenerationService service = service(options)) {
      // three steps of ~20 ms each cannot finish in 1 ms
      CompletableFuture<GenerationResult> f = service.submit(Tiny.request(7),
          Duration.ofMillis(1));
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> f.get(30, TimeUnit.SECONDS));
      assertInstanceOf(TimeoutException.class, e.getCause());
      assertTrue(e.getCause().getMessage().matches("deadline of 1\\.0 ms exceeded after .*"),
          e.getCause().getMessage());
    }
    // the options' default deadline applies to requests submitted without one
    ServiceOptions withDefault = ServiceOptions.builder().defaultDeadline(Duration.ofNanos(1))
        .build();
    try (GenerationService service = service(withDefault)) {
      CompletableFuture<GenerationResult> f = service.submit(Tiny.request(0));
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> f.get(30, TimeUnit.SECONDS));
      assertInstanceOf(DeadlineExceededException.class, e.getCause());
    }
  }

  @Test
  void badRequestsAreRefusedAtSubmit() throws Exception {
    try (GenerationService service = service(ServiceOptions.DEFAULT)) {
      IllegalArgumentException label = assertThrows(IllegalArgumentException.class,
          () -> service.submit(GenerationRequest.builder().classLabels(1000).build()));
      assertTrue(label.getMessage().contains("expected a label in [0, 1000)"),
          label.getMessage());
      IllegalArgumentException steps = assertThrows(IllegalArgumentException.class,
          () -> service.submit(GenerationRequest.builder().numInferenceSteps(41).build()));
      assertTrue(steps.getMessage().contains("cannot be larger than"), steps.getMessage());
      assertThrows(IllegalArgumentException.class,
          () -> service.submit(Tiny.request(0), Duration.ZERO));
      assertEquals(0, service.stats().submitted());
    }
  }

  @Test
  void aRequestOfMoreImagesThanMaxBatchRunsAloneAndSmallerOnesAroundIt() throws Exception {
    ServiceOptions options = ServiceOptions.builder().maxBatch(2).build();
    try (GenerationService service = service(options)) {
      GenerationRequest big = GenerationRequest.builder().classLabels(1, 2, 3, 4, 5).seed(9)
          .numInferenceSteps(2).build();
      CompletableFuture<GenerationResult> a = service.submit(Tiny.request(0));
      CompletableFuture<GenerationResult> b = service.submit(big);
      CompletableFuture<GenerationResult> c = service.submit(Tiny.request(1));
      tiny.assertSameAsAlone(0, a.get(30, TimeUnit.SECONDS));
      GenerationResult expected = tiny.reference().generate(big);
      GenerationResult actual = b.get(30, TimeUnit.SECONDS);
      assertArrayEquals(expected.imageArray(), actual.imageArray(), "5-image request");
      tiny.assertSameAsAlone(1, c.get(30, TimeUnit.SECONDS));
      assertEquals(5, service.stats().batchImages().max());
    }
  }

  @Test
  void closeFinishesTheRequestsInFlightThenRefusesNewOnes() throws Exception {
    GenerationService service = service(ServiceOptions.builder().maxBatch(4).build());
    List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
    for (int i = 0; i < 24; i++) {
      futures.add(service.submit(Tiny.request(i)));
    }
    futures.get(0).get(30, TimeUnit.SECONDS); // close while the rest are queued or running
    service.close();
    for (int i = 0; i < futures.size(); i++) {
      assertTrue(futures.get(i).isDone(), "request " + i + " not done when close returned");
      tiny.assertSameAsAlone(i, futures.get(i).get());
    }
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> service.submit(Tiny.request(0)));
    assertEquals("GenerationService is closed", e.getMessage());
    service.close(); // twice: harmless
    service.closeNow();
    assertTrue(service.isClosed());
    assertEquals(24, service.stats().completed());
  }

  @Test
  void closeNowCancelsWhatIsQueuedAndReturnsWithEveryFutureDone() throws Exception {
    GenerationService service = service(ServiceOptions.builder().maxBatch(2).build());
    List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      futures.add(service.submit(Tiny.request(i)));
    }
    awaitTrue(() -> service.stats().unetPasses() >= 1, "a first pass");
    // from another thread too, at the same time: both return once all is closed
    CountDownLatch go = new CountDownLatch(1);
    Thread other = new Thread(() -> {
      awaitLatch(go);
      service.close();
    });
    other.start();
    go.countDown();
    service.closeNow();
    other.join(30_000);
    int cancelled = 0;
    for (int i = 0; i < futures.size(); i++) {
      CompletableFuture<GenerationResult> f = futures.get(i);
      assertTrue(f.isDone(), "request " + i + " not done when closeNow returned");
      if (f.isCancelled()) {
        cancelled++;
        CancellationException e = assertThrows(CancellationException.class, f::get);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
      } else {
        tiny.assertSameAsAlone(i, f.get());
      }
    }
    assertTrue(cancelled > 0, "closeNow cancelled nothing of 30 requests");
    assertThrows(IllegalStateException.class, () -> service.submit(Tiny.request(0)));
  }

  @Test
  void aCallbackOnTheEventThreadMayCloseTheService() throws Exception {
    GenerationService service = service(ServiceOptions.DEFAULT);
    CompletableFuture<Void> closed = service.submit(Tiny.request(0))
        .thenRun(service::close); // runs on the event thread
    closed.get(30, TimeUnit.SECONDS);
    assertTrue(service.isClosed());
  }

  @Test
  void histogramPercentilesAreWithinOneSixteenth() {
    Histogram h = new Histogram();
    for (int v = 1; v <= 10_000; v++) {
      h.record(v * 1000L);
    }
    Histogram.Snapshot s = h.snapshot();
    assertEquals(10_000, s.count());
    assertEquals(1000, s.min());
    assertEquals(10_000_000, s.max());
    for (double q : new double[] {0.5, 0.9, 0.99, 0.999}) {
      double exact = q * 10_000 * 1000;
      double err = Math.abs(s.percentile(q) - exact) / exact;
      assertTrue(err <= 1.0 / 16, "p" + q + ": " + s.percentile(q) + " vs " + exact);
    }
    Histogram small = new Histogram();
    for (int v : new int[] {1, 2, 2, 3, 16}) {
      small.record(v);
    }
    assertEquals(2, small.snapshot().percentile(0.5)); // exact below 64
    assertEquals(16, small.snapshot().percentile(1.0));
    assertEquals(0, new Histogram().snapshot().percentile(0.99));
    for (int i = 0; i < 976; i++) { // buckets tile the longs
      assertEquals(i, Histogram.bucket(Histogram.upperBound(i)));
      if (i > 0) {
        assertEquals(i, Histogram.bucket(Histogram.upperBound(i - 1) + 1));
      }
    }
  }

  private static void sleepMicros(int micros) {
    try {
      TimeUnit.MICROSECONDS.sleep(micros);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void awaitLatch(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Waits up to 10 s for a condition that callbacks make true soon after a future is done. */
  static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5);
    }
  }
}
