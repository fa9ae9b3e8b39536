package io.cm4j.pipeline;

import io.cm4j.FloatTensor;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A batch of images as diffusers' pipelines return them, in the forms a caller writes out:
 * {@link #images()} is the one thing a result must give, the rest follow from it.
 */
public interface ImageBatch {
  /**
   * The images as diffusers' {@code output_type="np"}: float32 [B, H, W, C] in [0, 1]
   * ({@code (sample / 2 + 0.5).clamp(0, 1)}).
   */
  FloatTensor images();

  /** 8-bit pixels [B, H, W, C]: {@code round(image * 255)}, read with {@code & 0xff}. */
  default byte[] toUint8() {
    return ImageOutput.toUint8(images().toArray());
  }

  /** The images as diffusers' {@code output_type="pil"} would give them. */
  default List<BufferedImage> toBufferedImages() {
    FloatTensor images = images();
    long[] s = images.shape(); // [B, H, W, C]
    return ImageOutput.toBufferedImages(ImageOutput.toUint8(images.toArray()), (int) s[0],
        (int) s[1], (int) s[2], (int) s[3]);
  }

  /** Writes image {@code index} as a PNG, atomically (see {@link ImageOutput#writePng}). */
  default void writePng(int index, Path file) throws IOException {
    ImageOutput.writePng(toBufferedImages().get(index), file);
  }
}
