package io.cm4j.serve;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.ErrorCode;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * The engines a {@link GenerationService} runs its UNet passes on: one pipeline per device, all
 * of one model and dtype. Each pass goes to the least-loaded engine still in the pool (fewest
 * images in flight, then fewest images so far). An engine whose pass fails with an engine error
 * leaves the pool, the reason logged and kept in its {@link EngineStats}, and the pass runs
 * again on another engine, so its requests never see the failure while another engine is left.
 * The last engine stays: its failure fails the pass's requests, as a single engine's does. A
 * pass the engine refuses ({@link ErrorCode#INVALID_ARGUMENT}) or has no memory for
 * ({@link ErrorCode#OUT_OF_MEMORY}: a smaller pass may fit) fails without the engine leaving,
 * so one oversized pass cannot empty the pool.
 *
 * <p>Same images on any engine: a pass's output does not depend on the engine that ran it
 * within one device type and dtype (every CPU engine computes each image with the same
 * arithmetic in the same order whatever its thread count), so a request gets the images it
 * gets alone. Thread-safe: one pass per caller, any number of callers.
 */
public final class EnginePool implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger("io.cm4j.serve");

  /**
   * One engine's numbers: its device, whether it is still in the pool (else why not), its
   * passes and images, the seconds it spent in them, and the images it is running now.
   */
  public record EngineStats(Device device, boolean serving, String failure, long passes,
      long images, double busySeconds, int imagesInFlight) {}

  private static final class Engine {
    final ConsistencyModelPipeline pipeline;
    final int index;
    int inFlight; // images; every field below is guarded by the pool's lock
    String failure; // null while in the pool
    long passes;
    long images;
    long busyNanos;

    Engine(ConsistencyModelPipeline pipeline, int index) {
      this.pipeline = pipeline;
      this.index = index;
    }

    UNet unet() {
      return pipeline.unet();
    }
  }

  private final List<Engine> engines = new ArrayList<>();
  private final Object lock = new Object();

  /**
   * A pool over {@code pipelines}, which it takes ownership of: {@link #close()} closes them.
   *
   * @throws IllegalArgumentException when there are none, or their UNets differ in what a pass
   *     takes and gives (channels, sample size, classes)
   */
  public EnginePool(List<ConsistencyModelPipeline> pipelines) {
    if (pipelines.isEmpty()) {
      throw new IllegalArgumentException("an engine pool needs at least one pipeline");
    }
    UNet first = pipelines.get(0).unet();
    for (ConsistencyModelPipeline p : pipelines) {
      UNet u = Objects.requireNonNull(p, "pipeline").unet();
      if (u.inChannels() != first.inChannels() || u.sampleSize() != first.sampleSize()
          || u.numClassEmbeds() != first.numClassEmbeds()) {
        throw new IllegalArgumentException("the engines of a pool must run one model: " + u
            + " differs from " + first);
      }
      engines.add(new Engine(p, engines.size()));
    }
  }

  /**
   * Opens the model at {@code model} on each of {@code devices}; closes what it opened when one
   * fails.
   */
  public static EnginePool open(Path model, List<Device> devices, Precision precision)
      throws IOException, Cm4jException {
    List<ConsistencyModelPipeline> opened = new ArrayList<>();
    try {
      for (Device device : devices) {
        opened.add(ConsistencyModelPipeline.open(model, device, precision));
      }
      return new EnginePool(opened);
    } catch (IOException | Cm4jException | RuntimeException | Error e) {
      opened.forEach(ConsistencyModelPipeline::close);
      throw e;
    }
  }

  /**
   * The devices of a {@code --device} value: one device ({@code cpu}, {@code cpu:THREADS},
   * {@code cuda}, {@code cuda:N}), a comma-separated list of them ({@code cuda:0,cuda:1}), a
   * range ({@code cuda:0-3}; {@code cpu:0-1}: two CPU engines that share the {@code cores}
   * between them), or {@code all}: every CUDA device, else one CPU engine.
   *
   * @throws IllegalArgumentException naming the part that does not parse
   */
  public static List<Device> parseDevices(String text, int cudaDevices, int cores) {
    String s = text.trim();
    if (s.equals("all")) {
      List<Device> all = new ArrayList<>();
      for (int i = 0; i < cudaDevices; i++) {
        all.add(Device.cuda(i));
      }
      return all.isEmpty() ? List.of(Device.CPU) : all;
    }
    List<Device> devices = new ArrayList<>();
    for (String part : s.split(",", -1)) {
      String p = part.trim();
      int dash = p.indexOf('-');
      if (dash < 0) {
        devices.add(Device.parse(p));
        continue;
      }
      int colon = p.indexOf(':');
      String kind = colon < 0 ? "" : p.substring(0, colon);
      int from = rangeEnd(p, p.substring(colon + 1, dash));
      int to = rangeEnd(p, p.substring(dash + 1));
      if (!(kind.equals("cpu") || kind.equals("cuda")) || to < from) {
        throw new IllegalArgumentException("invalid device range '" + p + "': expected cpu:A-B "
            + "or cuda:A-B with A <= B");
      }
      for (int i = from; i <= to; i++) {
        devices.add(kind.equals("cuda") ? Device.cuda(i)
            : Device.cpu(Math.max(1, cores / (to - from + 1))));
      }
    }
    return List.copyOf(devices);
  }

  private static int rangeEnd(String range, String n) {
    if (n.isEmpty() || n.length() > 4 || !n.chars().allMatch(c -> c >= '0' && c <= '9')) {
      throw new IllegalArgumentException("invalid device range '" + range + "': expected "
          + "numbers around '-', found '" + n + "'");
    }
    return Integer.parseInt(n);
  }

  /** The first engine's pipeline: what the service draws latents from and reports. */
  public ConsistencyModelPipeline primary() {
    return engines.get(0).pipeline;
  }

  /** Number of engines, in the pool or not. */
  public int size() {
    return engines.size();
  }

  /** Engine {@code index}'s pipeline. */
  ConsistencyModelPipeline pipeline(int index) {
    return engines.get(index).pipeline;
  }

  /**
   * {@link UNet#forward} on the least-loaded engine in the pool; on another when that one
   * fails with an engine error (and leaves the pool), while one is left.
   *
   * @throws Cm4jException when the last engine fails
   */
  public FloatTensor forward(FloatTensor sample, float[] timesteps, long[] classLabels)
      throws Cm4jException {
    int images = (int) sample.shape()[0];
    while (true) {
      Engine engine = acquire(images);
      long start = System.nanoTime();
      try {
        FloatTensor out = engine.unet().forward(sample, timesteps, classLabels);
        release(engine, images, System.nanoTime() - start);
        return out;
      } catch (Cm4jException | IllegalStateException e) {
        if (!takeOut(engine, images, e)) {
          throw e;
        }
      } catch (RuntimeException | Error e) { // the pass, not the engine
        release(engine, images, System.nanoTime() - start);
        throw e;
      }
    }
  }

  private Engine acquire(int images) {
    synchronized (lock) {
      Engine best = null;
      for (Engine e : engines) {
        if (e.failure == null && (best == null || e.inFlight < best.inFlight
            || (e.inFlight == best.inFlight && e.images < best.images))) {
          best = e;
        }
      }
      best.inFlight += images; // never null: the last engine never leaves
      return best;
    }
  }

  private void release(Engine engine, int images, long nanos) {
    synchronized (lock) {
      engine.inFlight -= images;
      engine.passes++;
      engine.images += images;
      engine.busyNanos += nanos;
    }
  }

  /**
   * Whether {@code error} of a pass is the engine's, so it leaves the pool; not when it is the
   * pass's: an argument the engine refused, or memory it lacked for a pass this large.
   */
  static boolean isEngineFailure(Exception error) {
    return !(error instanceof Cm4jException c) || (c.code() != ErrorCode.INVALID_ARGUMENT
        && c.code() != ErrorCode.OUT_OF_MEMORY);
  }

  /**
   * Takes {@code engine} out of the pool for {@code error}, unless it is the last one or the
   * error is the pass's ({@link #isEngineFailure}). Returns whether it left.
   */
  private boolean takeOut(Engine engine, int images, Exception error) {
    boolean engineError = isEngineFailure(error);
    synchronized (lock) {
      engine.inFlight -= images;
      long serving = engines.stream().filter(e -> e.failure == null).count();
      if (!engineError || engine.failure != null || serving <= 1) {
        return engine.failure != null; // taken out meanwhile by a concurrent pass: try again
      }
      engine.failure = error.getMessage();
    }
    LOG.log(System.Logger.Level.WARNING, "engine {0} ({1}) left the pool: {2}", engine.index,
        engine.unet().device(), error.getMessage());
    return true;
  }

  /** Every engine's numbers, in pool order. */
  public List<EngineStats> stats() {
    synchronized (lock) {
      return engines.stream().map(e -> new EngineStats(e.unet().device(), e.failure == null,
          e.failure, e.passes, e.images, e.busyNanos / 1e9, e.inFlight)).toList();
    }
  }

  /**
   * Bytes of native memory the engines' UNets hold (packed weights and activation arenas), in
   * the pool or not; a closed engine holds none.
   */
  public long nativeBytes() {
    long bytes = 0;
    for (Engine e : engines) {
      try {
        bytes += e.unet().weightBytes() + e.unet().arenaBytes();
      } catch (IllegalStateException closed) {
        // freed: nothing held
      }
    }
    return bytes;
  }

  /** Closes every engine's pipeline; a second call does nothing. */
  @Override
  public void close() {
    engines.forEach(e -> e.pipeline.close());
  }

  @Override
  public String toString() {
    return "EnginePool[" + stats().stream().map(s -> s.device() + (s.serving() ? "" : " (out)"))
        .collect(Collectors.joining(", ")) + "]";
  }
}
