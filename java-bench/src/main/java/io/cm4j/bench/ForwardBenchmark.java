package io.cm4j.bench;

import ai.onnxruntime.OnnxTensor;
import io.cm4j.Device;
import io.cm4j.FloatTensor;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.WeightSource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * One float32 UNet forward pass on the CPU through cm4j's Java API ({@link UNet}, synth-v1
 * weights) and through ONNX Runtime's ({@link OrtUNet}: diffusers' model as
 * scripts/onnx_export.py exports it; the weights' values do not change the work), on the same
 * architecture, inputs and thread count. A pass takes about a second, so each is timed alone
 * (single shot): one warm-up pass, then three.
 *
 * <p>Files: {@code -Dcm4j.bench.onnx=FILE.onnx} (default {@code build/onnx/imagenet64.onnx},
 * which scripts/cpu-bench.sh writes); cm4j's side builds the config exported beside it
 * ({@code FILE.config.json}), else {@code -Dcm4j.bench.config}, else the golden imagenet64
 * config. {@code -Dbench.threads} (default 2) and {@code -Dbench.batch} (default 1,4).
 * {@link #main} leaves ONNX Runtime out, saying so, when there is no ONNX file.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(1)
public class ForwardBenchmark {
  private static final String ONNX = "build/onnx/imagenet64.onnx";

  @Param({"cm4j", "ort"})
  public String engine;

  @Param({"1", "4"})
  public int batch;

  private UNet unet;
  private FloatTensor sample;
  private float[] timestep;
  private long[] labels;
  private OrtUNet ort;
  private Map<String, OnnxTensor> ortInputs;

  @Setup(Level.Trial)
  public void open() throws Exception {
    int threads = Integer.getInteger("bench.threads", 2);
    if ("ort".equals(engine)) {
      ort = new OrtUNet(onnxFile(), threads);
      ortInputs = ort.inputs(batch);
      System.out.printf("ONNX Runtime %s opened the model in %.1f s%n", ort.version(),
          ort.loadSeconds());
      return;
    }
    unet = UNet.create(config(), WeightSource.synthV1(1), Device.cpu(threads), Precision.FP32);
    int size = unet.sampleSize();
    // the inputs of OrtUNet.inputs: sample 0.1, timestep 250, class 7
    float[] values = new float[batch * unet.inChannels() * size * size];
    Arrays.fill(values, 0.1f);
    sample = FloatTensor.of(new long[] {batch, unet.inChannels(), size, size}, values);
    timestep = new float[batch];
    Arrays.fill(timestep, 250f);
    labels = unet.isClassConditional() ? new long[batch] : null;
    if (labels != null) {
      Arrays.fill(labels, 7);
    }
  }

  @TearDown(Level.Trial)
  public void close() throws Exception {
    if (ort != null) {
      OrtUNet.close(ortInputs);
      ort.close();
    }
    if (unet != null) {
      unet.close();
    }
  }

  @Benchmark
  public Object forward() throws Exception {
    return ort != null ? ort.forward(ortInputs) : unet.forward(sample, timestep, labels);
  }

  /** Runs both engines (cm4j alone when there is no ONNX file), batch sizes from bench.batch. */
  public static void main(String[] args) throws Exception {
    Path onnx = onnxFile();
    String[] engines = {"cm4j", "ort"};
    if (!Files.isRegularFile(onnx)) {
      System.out.println("ForwardBenchmark: ONNX Runtime skipped: no ONNX model at " + onnx
          + " (scripts/cpu-bench.sh exports it, or PYTHONPATH=.baseline /usr/bin/python3 "
          + "scripts/onnx_export.py; -Dcm4j.bench.onnx=FILE names another)");
      engines = new String[] {"cm4j"};
    }
    System.out.println("ForwardBenchmark: " + ServiceBench.machine());
    new Runner(new OptionsBuilder()
        .include(ForwardBenchmark.class.getName())
        .param("engine", engines)
        .param("batch", System.getProperty("bench.batch", "1,4").split(","))
        .jvmArgsAppend("-Dcm4j.bench.onnx=" + onnx, "-Dcm4j.bench.config=" + config(),
            "-Dbench.threads=" + Integer.getInteger("bench.threads", 2))
        .shouldFailOnError(true)
        .build()).run();
  }

  private static Path onnxFile() {
    Path onnx = BenchFiles.find("cm4j.bench.onnx", ONNX);
    return onnx != null ? onnx : Path.of(ONNX);
  }

  /** The config exported beside the ONNX model, so that both engines run one architecture. */
  private static Path config() {
    Path beside = OrtBench.sibling(onnxFile(), ".config.json");
    if (Files.isRegularFile(beside) && System.getProperty("cm4j.bench.config") == null) {
      return beside;
    }
    Path config = BenchFiles.find("cm4j.bench.config", "shared/golden/imagenet64/config.json");
    if (config == null) {
      throw new IllegalStateException("no UNet config: set -Dcm4j.bench.config=FILE");
    }
    return config;
  }
}
