package io.cm4j.pipeline;

import io.cm4j.weights.AtomicFile;
import java.awt.image.BufferedImage;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * diffusers' {@code ConsistencyModelPipeline.postprocess_image}: model samples in [-1, 1] to
 * images, as float NHWC in [0, 1] ({@code output_type="np"}), 8-bit pixels and
 * {@link BufferedImage}s ({@code "pil"}), and PNG files.
 */
public final class ImageOutput {
  private ImageOutput() {}

  /**
   * {@code (sample / 2 + 0.5).clamp(0, 1)} permuted from [B, C, H, W] to [B, H, W, C], in float32
   * like torch.
   */
  public static float[] denormalizeToNhwc(float[] sample, int batch, int channels, int height,
      int width) {
    int plane = height * width;
    if (batch < 0 || channels < 1 || plane < 0
        || (long) batch * channels * plane != sample.length) {
      throw new IllegalArgumentException("expected a sample of shape [" + batch + ", " + channels
          + ", " + height + ", " + width + "], found " + sample.length + " elements");
    }
    float[] out = new float[sample.length];
    for (int b = 0; b < batch; b++) {
      for (int c = 0; c < channels; c++) {
        int src = (b * channels + c) * plane; // [b, c, :, :]
        for (int p = 0; p < plane; p++) {
          float v = sample[src + p] / 2f + 0.5f;
          out[(b * plane + p) * channels + c] = Math.min(Math.max(v, 0f), 1f); // [b, p, c]
        }
      }
    }
    return out;
  }

  /**
   * {@code (images * 255).round().astype("uint8")} as diffusers' {@code numpy_to_pil} does it: the
   * product in float32, then numpy's round half to even. Values are unsigned (read with
   * {@code & 0xff}); input outside [0, 1] is refused rather than wrapped as numpy would.
   */
  public static byte[] toUint8(float[] images) {
    byte[] out = new byte[images.length];
    for (int i = 0; i < images.length; i++) {
      float v = images[i];
      if (!(v >= 0f && v <= 1f)) {
        throw new IllegalArgumentException("pixel " + i + " is " + v + ", outside [0, 1]");
      }
      out[i] = (byte) (int) Math.rint(v * 255f);
    }
    return out;
  }

  /** 8-bit [B, H, W, C] pixels (C = 1 gray, C = 3 RGB, as {@code numpy_to_pil}) to images. */
  public static List<BufferedImage> toBufferedImages(byte[] pixels, int batch, int height,
      int width, int channels) {
    if (channels != 1 && channels != 3) {
      throw new IllegalArgumentException("expected 1 or 3 channels, found " + channels);
    }
    int perImage = height * width * channels;
    if (batch < 0 || height < 1 || width < 1 || (long) batch * perImage != pixels.length) {
      throw new IllegalArgumentException("expected pixels of shape [" + batch + ", " + height
          + ", " + width + ", " + channels + "], found " + pixels.length + " bytes");
    }
    List<BufferedImage> images = new ArrayList<>(batch);
    int[] row = new int[width * channels];
    for (int b = 0; b < batch; b++) {
      BufferedImage image = new BufferedImage(width, height,
          channels == 1 ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_3BYTE_BGR);
      WritableRaster raster = image.getRaster(); // bands in R, G, B order whatever the storage
      for (int y = 0; y < height; y++) {
        int base = b * perImage + y * width * channels;
        for (int i = 0; i < row.length; i++) {
          row[i] = pixels[base + i] & 0xff;
        }
        raster.setPixels(0, y, width, 1, row);
      }
      images.add(image);
    }
    return images;
  }

  /**
   * Writes a PNG so that {@code file} either does not change or holds the complete image: the
   * bytes go to a hidden temporary file in the same directory, which is then renamed over it
   * (see {@link AtomicFile}: through a symbolic link; a FIFO, device or folder is refused). The
   * temporary file is removed if anything fails.
   */
  public static void writePng(BufferedImage image, Path file) throws IOException {
    Path dest = AtomicFile.destination(file);
    Path tmp = AtomicFile.createTemporary(dest, ".tmp");
    try {
      try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.WRITE)) {
        if (!ImageIO.write(image, "png", out)) {
          throw new IOException("no PNG writer for image type " + image.getType());
        }
      }
      AtomicFile.moveIntoPlace(tmp, dest);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
