package io.cm4j.bench;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.TensorInfo;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * diffusers' UNet2DModel as scripts/onnx_export.py exports it, on ONNX Runtime's CPU provider
 * as a Java team would run it: a fixed number of intra-op threads, one inter-op thread, every
 * graph optimization (which ONNX Runtime applies while it opens the model).
 */
final class OrtUNet implements AutoCloseable {
  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;
  private final long channels;
  private final long size;
  private final boolean conditional;
  private final double loadSeconds;

  OrtUNet(Path model, int threads) throws OrtException {
    long start = System.nanoTime();
    try (SessionOptions options = new SessionOptions()) {
      options.setIntraOpNumThreads(threads);
      options.setInterOpNumThreads(1);
      options.setExecutionMode(SessionOptions.ExecutionMode.SEQUENTIAL);
      options.setOptimizationLevel(SessionOptions.OptLevel.ALL_OPT);
      session = env.createSession(model.toString(), options);
    }
    loadSeconds = (System.nanoTime() - start) / 1e9;
    Map<String, NodeInfo> inputs = session.getInputInfo();
    long[] shape = ((TensorInfo) inputs.get("sample").getInfo()).getShape(); // [-1, C, S, S]
    channels = shape[1];
    size = shape[2];
    conditional = inputs.containsKey("class_labels");
  }

  /** ONNX Runtime's version, e.g. "1.29.0". */
  String version() {
    return env.getVersion();
  }

  /** Seconds to open the model, graph optimizations included. */
  double loadSeconds() {
    return loadSeconds;
  }

  /**
   * The inputs of bench_unet and scripts/cpu_baseline.py at {@code batch}: sample 0.1
   * everywhere, timestep 250, class 7. The caller closes them.
   */
  Map<String, OnnxTensor> inputs(int batch) throws OrtException {
    FloatBuffer sample = FloatBuffer.allocate(Math.toIntExact(batch * channels * size * size));
    Arrays.fill(sample.array(), 0.1f);
    float[] timestep = new float[batch];
    Arrays.fill(timestep, 250f);
    Map<String, OnnxTensor> in = new LinkedHashMap<>();
    in.put("sample", OnnxTensor.createTensor(env, sample, new long[] {batch, channels, size, size}));
    in.put("timestep", OnnxTensor.createTensor(env, FloatBuffer.wrap(timestep),
        new long[] {batch}));
    if (conditional) {
      long[] labels = new long[batch];
      Arrays.fill(labels, 7);
      in.put("class_labels", OnnxTensor.createTensor(env, LongBuffer.wrap(labels),
          new long[] {batch}));
    }
    return in;
  }

  /** One forward pass: out_sample [B, C_out, S, S], row-major. */
  float[] forward(Map<String, OnnxTensor> inputs) throws OrtException {
    try (OrtSession.Result out = session.run(inputs)) {
      FloatBuffer values = ((OnnxTensor) out.get(0)).getFloatBuffer();
      float[] copy = new float[values.remaining()];
      values.get(copy);
      return copy;
    }
  }

  static void close(Map<String, OnnxTensor> inputs) {
    inputs.values().forEach(OnnxTensor::close);
  }

  @Override
  public void close() throws OrtException {
    session.close();
  }
}
