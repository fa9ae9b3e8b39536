package io.cm4j;

import java.util.Locale;

/**
 * Storage and compute type of a UNet's weights and activations; accumulation is always
 * float32. The CPU backend runs {@link #FP32} only.
 */
public enum Precision {
  FP32(0),
  FP16(1),
  BF16(2);

  private final int code;

  Precision(int code) {
    this.code = code;
  }

  /** The {@code CM4J_F32/F16/BF16} constant of cm4j.h. */
  int code() {
    return code;
  }

  /**
   * Parses {@code fp32}, {@code fp16} or {@code bf16} (any case).
   *
   * @throws IllegalArgumentException naming the text and the accepted values
   */
  public static Precision parse(String text) {
    for (Precision p : values()) {
      if (p.toString().equals(text.trim().toLowerCase(Locale.ROOT))) {
        return p;
      }
    }
    throw new IllegalArgumentException("invalid dtype '" + text + "': expected fp32, fp16 or bf16");
  }

  /** fp32, fp16 or bf16. */
  @Override
  public String toString() {
    return name().toLowerCase(Locale.ROOT);
  }
}
