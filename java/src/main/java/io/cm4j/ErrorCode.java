package io.cm4j;

/** Why a native call failed: the {@code CM4J_ERR_*} status codes of {@code cm4j.h}. */
public enum ErrorCode {
  /** A caller-supplied value is wrong (shape, label, ...). */
  INVALID_ARGUMENT(1),
  /** A config key or value outside the supported UNet family, or an unsupported mode. */
  UNSUPPORTED(2),
  /** Missing, unexpected or mis-shaped weights. */
  WEIGHTS(3),
  OUT_OF_MEMORY(4),
  /** The device is unavailable or a device call failed. */
  DEVICE(5),
  /** A call out of order (forward before finalize, ...). */
  STATE(6),
  INTERNAL(7),
  /** Java side only: the native library could not be loaded. */
  LIBRARY_UNAVAILABLE(-1);

  private final int status;

  ErrorCode(int status) {
    this.status = status;
  }

  /** The C status code ({@code CM4J_ERR_*}); -1 for {@link #LIBRARY_UNAVAILABLE}. */
  public int status() {
    return status;
  }

  /** The code of a non-zero native status; unknown values map to {@link #INTERNAL}. */
  public static ErrorCode fromStatus(int status) {
    for (ErrorCode c : values()) {
      if (c.status == status && status > 0) {
        return c;
      }
    }
    return INTERNAL;
  }
}
