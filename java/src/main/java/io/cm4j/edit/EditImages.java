package io.cm4j.edit;

import io.cm4j.FloatTensor;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * PNG inputs of the editing tasks: 8-bit RGB (or gray) images as model-range tensors,
 * {@code uint8 / 127.5 - 1} as the original code reads them, and inpainting masks in the
 * convention of diffusers' inpainting pipelines (WHITE = generate, BLACK = keep). An image of
 * another size is refused, or with {@code resize} center-cropped to a square and
 * area-averaged to the model's size. Errors name the file and what is wrong.
 */
public final class EditImages {
  /** Largest PNG read: a 4096x4096 photo, or a long strip; decoding it takes about 250 MB. */
  static final int MAX_SIDE = 16384;
  static final long MAX_PIXELS = 4096L * 4096;
  private static final int IHDR = 0x49484452; // "IHDR", big-endian
  private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
      '\n'};

  private EditImages() {}

  /**
   * The images as [B, 3, S, S]. {@code lowResOk} (superres) also takes images whose common
   * square size divides {@code size}, as [B, 3, L, L].
   *
   * @throws IllegalArgumentException for an unreadable or non-PNG file or a wrong size
   */
  public static FloatTensor readImages(List<Path> files, int size, boolean resize,
      boolean lowResOk) throws IOException {
    if (files.isEmpty()) {
      throw new IllegalArgumentException("expected at least one image file");
    }
    int[][][] pixels = new int[files.size()][][];
    int side = -1;
    for (int b = 0; b < files.size(); b++) {
      Path file = files.get(b);
      int[][] rgb = readRgb(file);
      int h = rgb.length;
      int w = rgb[0].length / 3;
      boolean low = lowResOk && h == w && h < size && size % h == 0;
      if (!(h == size && w == size) && !low) {
        if (!resize) {
          throw new IllegalArgumentException(file + ": expected a " + size + "x" + size
              + " image (the model's size" + (lowResOk ? ", or a size that divides it" : "")
              + "), found " + w + "x" + h + "; --resize center-crops and scales it");
        }
        rgb = resized(rgb, 3, size);
      }
      if (side >= 0 && rgb.length != side) {
        throw new IllegalArgumentException(file + ": expected " + side + "x" + side
            + " like the first image, found " + rgb.length + "x" + rgb.length);
      }
      side = rgb.length;
      pixels[b] = rgb;
    }
    float[] out = new float[files.size() * 3 * side * side];
    int plane = side * side;
    for (int b = 0; b < pixels.length; b++) {
      for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) {
          for (int c = 0; c < 3; c++) {
            out[(b * 3 + c) * plane + y * side + x] = pixels[b][y][3 * x + c] / 127.5f - 1f;
          }
        }
      }
    }
    return FloatTensor.of(new long[] {files.size(), 3, side, side}, out);
  }

  /**
   * Inpainting masks as {@code mask_keep} [B, 1, S, S]: 1 (keep) where the PNG is black, 0
   * (generate) where it is white. Without {@code resize} every pixel must be pure black or
   * white; resized masks are thresholded at half.
   */
  public static FloatTensor readMasks(List<Path> files, int size, boolean resize)
      throws IOException {
    float[] out = new float[files.size() * size * size];
    for (int b = 0; b < files.size(); b++) {
      Path file = files.get(b);
      int[][] rgb = readRgb(file);
      int h = rgb.length;
      int w = rgb[0].length / 3;
      if (h != size || w != size) {
        if (!resize) {
          throw new IllegalArgumentException(file + ": expected a " + size + "x" + size
              + " mask like the image, found " + w + "x" + h);
        }
        rgb = resized(rgb, 3, size);
      }
      for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
          int r = rgb[y][3 * x];
          int g = rgb[y][3 * x + 1];
          int bl = rgb[y][3 * x + 2];
          boolean white;
          if (resize) {
            white = r + g + bl >= 3 * 127.5;
          } else if (r == g && g == bl && (r == 0 || r == 255)) {
            white = r == 255;
          } else {
            throw new IllegalArgumentException(file + ": expected a binary mask (black = keep, "
                + "white = generate), found (" + r + ", " + g + ", " + bl + ") at x=" + x
                + ", y=" + y);
          }
          out[b * size * size + y * size + x] = white ? 0f : 1f;
        }
      }
    }
    return FloatTensor.of(new long[] {files.size(), 1, size, size}, out);
  }

  /** A PNG's 8-bit pixels as rows of R, G, B (gray repeated; alpha dropped). */
  static int[][] readRgb(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(file + ": no such file");
    }
    // The signature, then the IHDR chunk (length, type, width, height): the size is checked
    // before decoding, since a PNG of a few hundred kB can declare 30000x30000 pixels.
    ByteBuffer head = ByteBuffer.allocate(PNG_SIGNATURE.length + 16);
    try (InputStream in = Files.newInputStream(file)) {
      int n = in.readNBytes(head.array(), 0, head.capacity());
      if (n < PNG_SIGNATURE.length || !Arrays.equals(head.array(), 0, PNG_SIGNATURE.length,
          PNG_SIGNATURE, 0, PNG_SIGNATURE.length)) {
        throw new IllegalArgumentException(file + ": not a PNG file");
      }
      if (n < head.capacity() || head.getInt(12) != IHDR) {
        throw new IllegalArgumentException(file + ": unreadable PNG: no IHDR chunk first");
      }
    }
    long width = Integer.toUnsignedLong(head.getInt(16));
    long height = Integer.toUnsignedLong(head.getInt(20));
    if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
      throw new IllegalArgumentException(file + ": " + width + "x" + height + " pixels is too large (at "
          + "most " + MAX_SIDE + " a side and " + MAX_PIXELS + " pixels)");
    }
    BufferedImage image;
    try {
      image = ImageIO.read(file.toFile());
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(file + ": unreadable PNG: " + e.getMessage(), e);
    }
    if (image == null) {
      throw new IllegalArgumentException(file + ": unreadable PNG");
    }
    int w = image.getWidth();
    int h = image.getHeight();
    int[][] rows = new int[h][3 * w];
    Raster raster = image.getRaster();
    boolean indexed = image.getColorModel() instanceof IndexColorModel;
    int bands = raster.getNumBands();
    if (!indexed && raster.getSampleModel().getSampleSize(0) != 8) {
      throw new IllegalArgumentException(file + ": expected an 8-bit PNG, found "
          + raster.getSampleModel().getSampleSize(0) + " bits per sample");
    }
    int[] px = new int[bands];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        if (indexed) {
          int argb = image.getRGB(x, y);
          rows[y][3 * x] = (argb >> 16) & 0xff;
          rows[y][3 * x + 1] = (argb >> 8) & 0xff;
          rows[y][3 * x + 2] = argb & 0xff;
          continue;
        }
        raster.getPixel(x, y, px); // bands in R, G, B (, A) order; gray (+ alpha) has 1 (2)
        boolean gray = bands < 3;
        for (int c = 0; c < 3; c++) {
          rows[y][3 * x + c] = px[gray ? 0 : c];
        }
      }
    }
    return rows;
  }

  /**
   * Center-crops interleaved rows to a square and area-averages them to {@code size} (each
   * output pixel the mean of the source area it covers, partial pixels weighted by their
   * share), rounded to 8 bits.
   */
  static int[][] resized(int[][] rows, int channels, int size) {
    int h = rows.length;
    int w = rows[0].length / channels;
    int side = Math.min(h, w);
    int top = (h - side) / 2;
    int left = (w - side) / 2;
    double[][] cols = new double[side][size * channels]; // rows scaled along x first
    for (int y = 0; y < side; y++) {
      for (int o = 0; o < size; o++) {
        for (int c = 0; c < channels; c++) {
          final int yy = y;
          final int cc = c;
          cols[y][o * channels + c] = boxMean(o, side, size,
              i -> rows[top + yy][(left + i) * channels + cc]);
        }
      }
    }
    int[][] out = new int[size][size * channels];
    for (int o = 0; o < size; o++) {
      for (int k = 0; k < size * channels; k++) {
        final int kk = k;
        double v = boxMean(o, side, size, i -> cols[i][kk]);
        out[o][k] = (int) Math.min(255, Math.max(0, Math.round(v)));
      }
    }
    return out;
  }

  /** The mean of source samples [o * n / m, (o + 1) * n / m) of n, weighted by coverage. */
  private static double boxMean(int o, int n, int m, java.util.function.IntToDoubleFunction at) {
    double begin = (double) o * n / m;
    double end = (double) (o + 1) * n / m;
    double sum = 0;
    for (int i = (int) Math.floor(begin); i < Math.min(n, Math.ceil(end)); i++) {
      double weight = Math.min(end, i + 1) - Math.max(begin, i);
      sum += weight * at.applyAsDouble(i);
    }
    return sum / (end - begin);
  }
}
