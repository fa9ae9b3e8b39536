package io.cm4j.edit;

import io.cm4j.FloatTensor;
import io.cm4j.pipeline.TorchGenerator;
import java.util.Arrays;

/** Spherical interpolation between two latents, as the paper's interpolation figure does. */
final class Slerp {
  private Slerp() {}

  /**
   * {@code z(a) = sin((1-a) psi)/sin(psi) z1 + sin(a psi)/sin(psi) z2} for each alpha, in double,
   * rounded to float once and stacked: [A, C, S, S]. {@code psi = arccos(clip(z1.z2 /
   * (|z1||z2|), -1, 1))} over the flattened latents. z1 and z2 (each [1, C, S, S]) are drawn
   * from the generator, z1 first, when not given.
   */
  static float[] latents(FloatTensor z1, FloatTensor z2, double[] alphas, long[] shape,
      TorchGenerator generator) {
    long[] one = {1, shape[1], shape[2], shape[3]};
    if ((z1 == null) != (z2 == null)) {
      throw new EditArgumentException("latents", "expected both z1 and z2, or neither");
    }
    float[] a = z1 == null ? generator.randn(one) : checked("z1", z1, one);
    float[] b = z2 == null ? generator.randn(one) : checked("z2", z2, one);
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      na += (double) a[i] * a[i];
      nb += (double) b[i] * b[i];
    }
    if (na == 0 || nb == 0) {
      throw new EditArgumentException("latents", (na == 0 ? "z1" : "z2")
          + " is all zeros, so it has no direction to interpolate along");
    }
    double psi = Math.acos(Math.max(-1, Math.min(1, dot / (Math.sqrt(na) * Math.sqrt(nb)))));
    double sinPsi = Math.sin(psi);
    float[] out = new float[alphas.length * a.length];
    for (int k = 0; k < alphas.length; k++) {
      // psi = 0 (equal directions) would divide by zero; the limit is the linear blend
      double wa = sinPsi == 0 ? 1 - alphas[k] : Math.sin((1 - alphas[k]) * psi) / sinPsi;
      double wb = sinPsi == 0 ? alphas[k] : Math.sin(alphas[k] * psi) / sinPsi;
      for (int i = 0; i < a.length; i++) {
        out[k * a.length + i] = (float) (wa * a[i] + wb * b[i]);
      }
    }
    return out;
  }

  private static float[] checked(String name, FloatTensor z, long[] shape) {
    if (!Arrays.equals(z.shape(), shape)) {
      throw new EditArgumentException("latents", "expected " + name + " of shape "
          + Arrays.toString(shape) + ", found " + Arrays.toString(z.shape()));
    }
    float[] v = z.toArray();
    for (float x : v) {
      if (!Float.isFinite(x)) {
        throw new EditArgumentException("latents", name + " holds " + x
            + ", expected finite values");
      }
    }
    return v;
  }
}
