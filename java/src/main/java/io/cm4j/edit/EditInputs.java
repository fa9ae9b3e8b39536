package io.cm4j.edit;

import io.cm4j.FloatTensor;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.TensorEntry;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Exact float inputs of an edit from a safetensors file, laid out as the golden editing cases'
 * {@code <case>.inputs.safetensors}: {@code image} [B, 3, H, W] f32 in [-1, 1],
 * {@code mask_keep} [B, 1, H, W] f32, {@code class_labels} [B] i64, {@code seed} [1] i64,
 * {@code timesteps} [k] i64, {@code sigma} [1] f32, {@code alphas} [A] f64 (or f32), and
 * optionally {@code z1}, {@code z2} [1, C, S, S] f32. Every tensor is optional here;
 * {@link ImageEditor#start} says what the task misses.
 */
public final class EditInputs {
  private EditInputs() {}

  /**
   * The request the file describes.
   *
   * @throws CheckpointException when the file is unreadable or a tensor has a wrong dtype or
   *     shape (the message names the file and the tensor)
   */
  public static EditRequest.Builder read(Path file, EditTask task) throws CheckpointException {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      EditRequest.Builder b = EditRequest.builder(task);
      if (f.contains("image")) {
        b.image(FloatTensor.of(f.get("image").shape(), f.floats("image")));
      }
      if (f.contains("mask_keep")) {
        b.maskKeep(FloatTensor.of(f.get("mask_keep").shape(), f.floats("mask_keep")));
      }
      if (f.contains("class_labels")) {
        b.classLabels(f.longs("class_labels"));
      }
      if (f.contains("seed")) {
        long[] seed = f.longs("seed");
        b.seed(single(f, "seed", seed.length == 1 ? seed[0] : null));
      }
      if (f.contains("timesteps")) {
        long[] t = f.longs("timesteps");
        int[] timesteps = new int[t.length];
        for (int i = 0; i < t.length; i++) {
          if (t[i] < Integer.MIN_VALUE || t[i] > Integer.MAX_VALUE) {
            throw new CheckpointException(file, "tensor 'timesteps' holds " + t[i]
                + ", outside the int range");
          }
          timesteps[i] = (int) t[i];
        }
        b.timesteps(timesteps);
      }
      if (f.contains("sigma")) {
        float[] s = f.floats("sigma");
        b.sigma(single(f, "sigma", s.length == 1 ? s[0] : null));
      }
      if (f.contains("alphas")) {
        b.alphas(doubles(f, "alphas"));
      }
      if (f.contains("z1") || f.contains("z2")) {
        b.latents(tensor(f, "z1"), tensor(f, "z2"));
      }
      return b;
    }
  }

  private static <T> T single(SafetensorsFile f, String name, T value)
      throws CheckpointException {
    if (value == null) {
      throw new CheckpointException(f.path(), "tensor '" + name + "': expected one value");
    }
    return value;
  }

  private static FloatTensor tensor(SafetensorsFile f, String name) throws CheckpointException {
    return f.contains(name) ? FloatTensor.of(f.get(name).shape(), f.floats(name)) : null;
  }

  /** F64 as stored, or F32/F16/BF16 widened. */
  private static double[] doubles(SafetensorsFile f, String name) throws CheckpointException {
    TensorEntry t = f.get(name);
    if (t.dtype() != DType.F64) {
      float[] v = f.floats(name);
      double[] out = new double[v.length];
      for (int i = 0; i < v.length; i++) {
        out[i] = v[i];
      }
      return out;
    }
    ByteBuffer data = t.data();
    double[] out = new double[(int) t.numel()];
    for (int i = 0; i < out.length; i++) {
      out[i] = data.getDouble(8 * i);
    }
    return out;
  }
}
