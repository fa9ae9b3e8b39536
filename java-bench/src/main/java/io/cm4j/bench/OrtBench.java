package io.cm4j.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import io.cm4j.weights.Json;
import io.cm4j.weights.JsonException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The ONNX Runtime side of scripts/cpu-bench.sh: one batch size, a warm-up pass, then the best
 * of --iters, printed as one line of key=value fields as scripts/cpu_baseline.py prints them:
 * <pre>
 *   ort_bench version=1.29.0 batch=1 threads=2 iters=3 load_s=18.2 s_pass=0.71 s_image=0.71
 *       images_s=1.41 check_rel_l2=2.1e-06
 * </pre>
 * Before timing, a batch-1 pass is checked against PyTorch's output for the same inputs
 * ({@code FILE.check.json}, written beside the model by scripts/onnx_export.py): an export
 * that computes something else fails here, not in the table.
 *
 * <pre>java -cp java-bench/target/benchmarks.jar io.cm4j.bench.OrtBench
 *     --model FILE.onnx [--batch B] [--threads N] [--iters N]</pre>
 */
public final class OrtBench {
  /** ONNX Runtime against PyTorch in float32; typical differences are about 1e-6. */
  private static final double CHECK_TOLERANCE = 1e-4;

  private OrtBench() {}

  public static void main(String[] args) throws Exception {
    Path model = null;
    int batch = 1;
    int threads = 2;
    int iters = 3;
    for (int i = 0; i < args.length; i += 2) {
      String value = i + 1 < args.length ? args[i + 1] : fail(args[i] + " needs a value");
      switch (args[i]) {
        case "--model" -> model = Path.of(value);
        case "--batch" -> batch = positive(args[i], value);
        case "--threads" -> threads = positive(args[i], value);
        case "--iters" -> iters = positive(args[i], value);
        default -> fail("unknown argument " + args[i]
            + " (expected --model FILE.onnx [--batch B] [--threads N] [--iters N])");
      }
    }
    if (model == null || !Files.isRegularFile(model)) {
      fail("--model " + model + ": no such file (scripts/onnx_export.py writes it)");
    }
    try (OrtUNet unet = new OrtUNet(model, threads)) {
      double error = check(unet, sibling(model, ".check.json"));
      Map<String, OnnxTensor> inputs = unet.inputs(batch);
      double best = Double.MAX_VALUE;
      try {
        for (int it = 0; it <= iters; it++) {
          long t0 = System.nanoTime();
          unet.forward(inputs);
          double seconds = (System.nanoTime() - t0) / 1e9;
          if (it > 0) { // the first pass at a new batch size plans its buffers
            best = Math.min(best, seconds);
          }
        }
      } finally {
        OrtUNet.close(inputs);
      }
      System.out.printf(Locale.ROOT, "ort_bench version=%s batch=%d threads=%d iters=%d "
          + "load_s=%.3f s_pass=%.4f s_image=%.4f images_s=%.4f check_rel_l2=%.3g%n",
          unet.version(), batch, threads, iters, unet.loadSeconds(), best, best / batch,
          batch / best, error);
    }
  }

  /** FILE{@code suffix} beside FILE.onnx, as scripts/onnx_export.py names them. */
  static Path sibling(Path model, String suffix) {
    String name = model.getFileName().toString();
    return model.resolveSibling(name.replaceFirst("\\.onnx$", "") + suffix);
  }

  /** Relative L2 error of a batch-1 pass against PyTorch's output; fails above the bound. */
  static double check(OrtUNet unet, Path checkFile) throws OrtException {
    List<?> expected;
    try {
      expected = (List<?>) Json.parseObject(Files.readString(checkFile)).get("out_sample");
    } catch (IOException | JsonException | ClassCastException e) {
      return fail(checkFile + ": cannot read PyTorch's output (" + e.getMessage()
          + "); export the model again with scripts/onnx_export.py");
    }
    Map<String, OnnxTensor> inputs = unet.inputs(1);
    float[] got;
    try {
      got = unet.forward(inputs);
    } finally {
      OrtUNet.close(inputs);
    }
    if (expected == null || expected.size() != got.length) {
      return fail(checkFile + ": expected " + got.length + " values of out_sample, found "
          + (expected == null ? "none" : expected.size()));
    }
    double diff = 0;
    double norm = 0;
    for (int i = 0; i < got.length; i++) {
      double e = ((Number) expected.get(i)).doubleValue();
      diff += (got[i] - e) * (got[i] - e);
      norm += e * e;
    }
    double error = Math.sqrt(diff / norm);
    if (!(error <= CHECK_TOLERANCE)) {
      fail("ONNX Runtime's output differs from PyTorch's: relative L2 error " + error
          + " (bound " + CHECK_TOLERANCE + ")");
    }
    return error;
  }

  private static int positive(String option, String value) {
    try {
      int n = Integer.parseInt(value);
      if (n >= 1) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    return fail(option + ": expected a positive integer, found '" + value + "'");
  }

  private static <T> T fail(String message) {
    System.err.println("ort_bench: " + message);
    System.exit(2);
    throw new AssertionError(message);
  }
}
