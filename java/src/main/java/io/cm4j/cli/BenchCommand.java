package io.cm4j.cli;

import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.OpTime;
import io.cm4j.UNet;
import io.cm4j.internal.ProcessMemory;
import io.cm4j.pipeline.TorchGenerator;
import io.cm4j.weights.Json;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cm4j bench}: steady-state UNet forward passes, timed through the Java API. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Times UNet forward passes: for each --batch, --warmup untimed passes (the first builds "
            + "the activation plan), then --iters timed ones, each through UNet.forward with "
            + "the same random inputs (torch.randn of seed 0, timestep 250, labels 0..B-1).",
        "Prints the model's open time, then one row per batch: the best and median seconds "
            + "per image over the timed passes, images/s of the best pass, the engine's weight "
            + "and activation-arena MB, and the process's peak resident memory so far (VmHWM). "
            + "--json prints one JSON object per batch instead.",
        "--ops N adds, per batch, the N slowest ops of one more pass run with the op profile "
            + "on (each op waited for and timed on its own).",
        "Speed depends on everything else the machine runs: compare runs made together."})
final class BenchCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Mixin UNetOptions unet;

  @Option(names = "--batch", paramLabel = "B[,B...]", split = ",", hideParamSyntax = true,
      defaultValue = "1",
      description = "Batch sizes, each timed in turn (default: ${DEFAULT-VALUE}).")
  List<Integer> batches;

  private static final int MAX_PASSES = 100_000;

  @Option(names = "--iters", paramLabel = "N", defaultValue = "3",
      description = "Timed passes per batch size (default: ${DEFAULT-VALUE}).")
  int iters;

  @Option(names = "--warmup", paramLabel = "W", defaultValue = "1",
      description = "Untimed passes before them (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Mixin DeviceOption device;
  @Mixin DtypeOption dtype;

  @Option(names = "--threads", paramLabel = "N",
      description = "CPU threads, the same as --device cpu:N (default: one per core the JVM "
          + "may use).")
  Integer threads;

  @Option(names = "--ops", paramLabel = "N", defaultValue = "0",
      description = "Also list the N slowest ops of a profiled pass per batch (default: none).")
  int ops;

  @Option(names = "--json", description = "One JSON object per batch size instead of the table: "
      + "batch, dtype, device, threads (null on a GPU), warmup, iters, open_s, best_s_per_image, "
      + "median_s_per_image, images_per_s, weights_mb, arena_mb, peak_rss_mb (null without "
      + "/proc), and with --ops slowest_ops: [{name, ms, share}, ...].")
  boolean json;

  @Override
  public Integer call() throws Exception {
    unet.check();
    checkCounts();
    Device on = resolveDevice();
    PrintWriter out = spec.commandLine().getOut();
    long start = System.nanoTime();
    try (UNet model = unet.open(on, dtype.value)) {
      double openSeconds = (System.nanoTime() - start) / 1e9;
      if (!json) {
        out.printf(Locale.ROOT, "bench: %s %s, opened in %.2f s; %d timed pass(es) per batch "
            + "after %d warm-up%n", on, dtype.value, openSeconds, iters, warmup);
        out.printf("%6s %6s %7s %13s %15s %9s %11s %9s %12s%n", "batch", "dtype", "threads",
            "best s/image", "median s/image", "images/s", "weights MB", "arena MB",
            "peak RSS MB");
        out.flush();
      }
      for (int batch : batches) {
        print(out, run(model, batch, openSeconds));
      }
    }
    return 0;
  }

  private void checkCounts() throws UsageException {
    for (int b : batches) {
      if (b < 1) {
        throw new UsageException("--batch: expected sizes of at least 1, found " + b);
      }
    }
    // A timed pass's result is kept until the table: a bound keeps that array (and the run)
    // finite.
    if (iters < 1 || iters > MAX_PASSES) {
      throw new UsageException("--iters: expected 1 to " + MAX_PASSES + " timed passes, found "
          + iters);
    }
    if (warmup < 0 || warmup > MAX_PASSES) {
      throw new UsageException("--warmup: expected 0 to " + MAX_PASSES + " passes, found "
          + warmup);
    }
    if (ops < 0) {
      throw new UsageException("--ops: expected 0 or more ops, found " + ops);
    }
  }

  /**
   * The device with its thread count made explicit, so that what is reported is what ran:
   * --threads N, else cpu:N as given, else one thread per core the JVM may use.
   */
  private Device resolveDevice() throws UsageException {
    Device d = device.value;
    if (threads == null) {
      return d.kind() == Device.Kind.CPU && d.threads() == 0
          ? Device.cpu(Runtime.getRuntime().availableProcessors()) : d;
    }
    if (d.kind() != Device.Kind.CPU) {
      throw new UsageException("--threads " + threads + ": applies to the CPU only, found "
          + "--device " + d);
    }
    if (d.threads() != 0 && d.threads() != threads) {
      throw new UsageException("--threads " + threads + ": contradicts --device " + d);
    }
    try {
      return Device.cpu(threads);
    } catch (IllegalArgumentException e) {
      throw new UsageException("--threads " + threads + ": " + e.getMessage(), e);
    }
  }

  /** Warm-up and timed passes at one batch size; the row's fields as --json names them. */
  private Map<String, Object> run(UNet model, int batch, double openSeconds) throws Exception {
    long[] shape = {batch, model.inChannels(), model.sampleSize(), model.sampleSize()};
    FloatTensor sample;
    try {
      sample = FloatTensor.zeros(shape);
    } catch (IllegalArgumentException e) { // more elements than one buffer holds
      throw new UsageException("--batch " + batch + ": " + e.getMessage(), e);
    }
    sample.buffer().put(0, new TorchGenerator(0).randn(shape));
    float[] timestep = new float[batch];
    Arrays.fill(timestep, 250f);
    long[] labels = null;
    if (model.isClassConditional()) {
      labels = new long[batch];
      Arrays.setAll(labels, i -> i % model.numClassEmbeds());
    }
    for (int i = 0; i < warmup; i++) {
      model.forward(sample, timestep, labels);
    }
    double[] perImage = new double[iters];
    for (int i = 0; i < iters; i++) {
      long t0 = System.nanoTime();
      model.forward(sample, timestep, labels);
      perImage[i] = (System.nanoTime() - t0) / 1e9 / batch;
    }
    Arrays.sort(perImage);
    double median = iters % 2 == 1 ? perImage[iters / 2]
        : (perImage[iters / 2 - 1] + perImage[iters / 2]) / 2;
    long peak = ProcessMemory.peakResidentBytes();
    Device on = model.device();
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("batch", batch);
    row.put("dtype", model.precision().toString());
    row.put("device", on.toString());
    row.put("threads", on.kind() == Device.Kind.CPU ? on.threads() : null);
    row.put("warmup", warmup);
    row.put("iters", iters);
    row.put("open_s", round(openSeconds));
    row.put("best_s_per_image", round(perImage[0]));
    row.put("median_s_per_image", round(median));
    row.put("images_per_s", round(1 / perImage[0]));
    row.put("weights_mb", round(model.weightBytes() / 1e6));
    row.put("arena_mb", round(model.arenaBytes() / 1e6));
    row.put("peak_rss_mb", peak < 0 ? null : round(peak / 1e6));
    if (ops > 0) {
      long[] classLabels = labels;
      row.put("slowest_ops", slowestOps(model, () -> model.forward(sample, timestep, classLabels)));
    }
    return row;
  }

  private interface Pass {
    void run() throws Exception;
  }

  /** The {@link #ops} slowest ops of one profiled pass, each {name, ms, share of the pass}. */
  private List<Map<String, Object>> slowestOps(UNet model, Pass pass) throws Exception {
    List<OpTime> profile;
    model.setProfileOps(true);
    try {
      pass.run();
      profile = model.opProfile();
    } finally {
      model.setProfileOps(false);
    }
    double total = profile.stream().mapToDouble(OpTime::millis).sum();
    List<Map<String, Object>> slowest = new ArrayList<>();
    profile.stream().sorted(Comparator.comparingDouble(OpTime::millis).reversed()).limit(ops)
        .forEach(op -> {
          Map<String, Object> entry = new LinkedHashMap<>();
          entry.put("name", op.name());
          entry.put("ms", round(op.millis()));
          entry.put("share", round(total > 0 ? op.millis() / total : 0));
          slowest.add(entry);
        });
    return slowest;
  }

  private void print(PrintWriter out, Map<String, Object> row) {
    if (json) {
      out.println(Json.write(row));
    } else {
      Object threadCount = row.get("threads");
      Object peak = row.get("peak_rss_mb");
      out.printf(Locale.ROOT, "%6d %6s %7s %13.4f %15.4f %9.3f %11.1f %9.1f %12s%n",
          row.get("batch"), row.get("dtype"), threadCount == null ? "-" : threadCount,
          row.get("best_s_per_image"), row.get("median_s_per_image"), row.get("images_per_s"),
          row.get("weights_mb"), row.get("arena_mb"),
          peak == null ? "-" : String.format(Locale.ROOT, "%.1f", (Double) peak));
      @SuppressWarnings("unchecked")
      List<Map<String, Object>> slowest = (List<Map<String, Object>>) row.get("slowest_ops");
      if (slowest != null) {
        out.printf("  slowest ops at batch %s (each waited for):%n", row.get("batch"));
        for (Map<String, Object> op : slowest) {
          out.printf(Locale.ROOT, "  %10.3f ms %5.1f%%  %s%n", op.get("ms"),
              100 * (Double) op.get("share"), op.get("name"));
        }
      }
    }
    out.flush();
  }

  /** Six significant digits: enough for any timing, and short JSON. */
  private static double round(double v) {
    return Double.parseDouble(String.format(Locale.ROOT, "%.6g", v));
  }
}
