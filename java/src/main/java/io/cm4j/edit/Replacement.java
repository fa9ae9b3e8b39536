package io.cm4j.edit;

/**
 * The editing loops' replacement operators R(y, d) and the prepared references y, in float32,
 * each operation rounded as written (Java never fuses a multiply-add), so the native backends
 * ({@code edit_step} in native/src/backend.h) reproduce them bit for bit. Tensors are NCHW
 * with 3 channels for colorize; {@code plane = H * W}.
 *
 * <pre>
 * task      y = prepare(image)            R(y, d)
 * inpaint   M*image + (1-M)*(-1)          M*y + (1-M)*d           M: mask_keep, 1 = keep
 * colorize  q (q.image)                   d + q (q.y - q.d)       q = w/|w|, w = luma weights
 * superres  up_p(avg_p(image))            (d - up_p(avg_p(d))) + y
 * </pre>
 * {@code q.x} is {@code (q0*x0 + q1*x1) + q2*x2} per pixel; {@code avg_p} sums each p x p patch
 * row by row, left to right, in float, and divides the sum by {@code p*p}.
 */
final class Replacement {
  private Replacement() {}

  /** ITU-R 601 luma weights (0.2989, 0.5870, 0.1140) over their norm, rounded to float once. */
  static final float[] Q = unitLuma();

  private static float[] unitLuma() {
    double[] w = {0.2989, 0.5870, 0.1140};
    double norm = Math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    return new float[] {(float) (w[0] / norm), (float) (w[1] / norm), (float) (w[2] / norm)};
  }

  /** {@code inpaint}'s reference: the kept pixels, -1 (black) elsewhere. */
  static float[] prepareInpaint(float[] image, float[] maskKeep, int batch, int plane) {
    float[] minusOne = new float[image.length];
    java.util.Arrays.fill(minusOne, -1f);
    float[] y = new float[image.length];
    inpaint(image, minusOne, maskKeep, y, batch, plane);
    return y;
  }

  /** {@code M*y + (1-M)*d} into {@code out}, M broadcast over the channels. */
  static void inpaint(float[] y, float[] d, float[] maskKeep, float[] out, int batch,
      int plane) {
    int channels = y.length / (batch * plane);
    for (int b = 0; b < batch; b++) {
      for (int c = 0; c < channels; c++) {
        int base = (b * channels + c) * plane;
        for (int p = 0; p < plane; p++) {
          float m = maskKeep[b * plane + p];
          out[base + p] = m * y[base + p] + (1f - m) * d[base + p];
        }
      }
    }
  }

  /** {@code q (q.image)}: the image's luma along q. */
  static float[] prepareColorize(float[] image, int batch, int plane) {
    float[] y = new float[image.length];
    for (int b = 0; b < batch; b++) {
      int base = b * 3 * plane;
      for (int p = 0; p < plane; p++) {
        float luma = dot(image, base + p, plane);
        for (int c = 0; c < 3; c++) {
          y[base + c * plane + p] = Q[c] * luma;
        }
      }
    }
    return y;
  }

  /** {@code d + q (q.y - q.d)} into {@code out}: d with the luma of y. */
  static void colorize(float[] y, float[] d, float[] out, int batch, int plane) {
    for (int b = 0; b < batch; b++) {
      int base = b * 3 * plane;
      for (int p = 0; p < plane; p++) {
        float shift = dot(y, base + p, plane) - dot(d, base + p, plane);
        for (int c = 0; c < 3; c++) {
          int i = base + c * plane + p;
          out[i] = d[i] + Q[c] * shift;
        }
      }
    }
  }

  private static float dot(float[] x, int at, int plane) {
    return (Q[0] * x[at] + Q[1] * x[at + plane]) + Q[2] * x[at + 2 * plane];
  }

  /** {@code up_p(avg_p(image))}: each p x p patch replaced by its mean. */
  static float[] prepareSuperres(float[] image, int planes, int size, int patch) {
    return upsample(patchMeans(image, planes, size, patch), planes, size / patch, patch);
  }

  /** {@code (d - up_p(avg_p(d))) + y} into {@code out}; {@code planes = B * C}. */
  static void superres(float[] y, float[] d, float[] out, int planes, int size, int patch) {
    int cells = size / patch;
    float[] means = patchMeans(d, planes, size, patch);
    for (int q = 0; q < planes; q++) {
      for (int r = 0; r < size; r++) {
        for (int c = 0; c < size; c++) {
          int k = (q * size + r) * size + c;
          out[k] = (d[k] - means[(q * cells + r / patch) * cells + c / patch]) + y[k];
        }
      }
    }
  }

  /** {@code avg_p(x)}: [planes, size/p, size/p], each patch summed row by row, then / p*p. */
  static float[] patchMeans(float[] x, int planes, int size, int patch) {
    int cells = size / patch;
    float area = patch * patch;
    float[] means = new float[planes * cells * cells];
    for (int q = 0; q < planes; q++) {
      for (int pr = 0; pr < cells; pr++) {
        for (int pc = 0; pc < cells; pc++) {
          int corner = (q * size + pr * patch) * size + pc * patch;
          float sum = 0f;
          for (int i = 0; i < patch; i++) {
            for (int j = 0; j < patch; j++) {
              sum += x[corner + i * size + j];
            }
          }
          means[(q * cells + pr) * cells + pc] = sum / area;
        }
      }
    }
    return means;
  }

  /** {@code up_p(lowres)}: a low-resolution image's pixels repeated over p x p patches. */
  static float[] upsample(float[] lowres, int planes, int lowSize, int patch) {
    int size = lowSize * patch;
    float[] out = new float[planes * size * size];
    for (int q = 0; q < planes; q++) {
      for (int r = 0; r < size; r++) {
        for (int c = 0; c < size; c++) {
          out[(q * size + r) * size + c] =
              lowres[(q * lowSize + r / patch) * lowSize + c / patch];
        }
      }
    }
    return out;
  }
}
