package io.cm4j.weights.pickle;

import java.nio.ByteBuffer;

/**
 * A Python {@code bytes} value: a read-only view of the stream (no copy) or, for bytes made by
 * {@code _codecs.encode}, of a new buffer.
 */
public final class PyBytes {
  private final ByteBuffer data;

  PyBytes(ByteBuffer data) {
    this.data = data.asReadOnlyBuffer();
  }

  /** The bytes, as a fresh read-only view positioned at 0. */
  public ByteBuffer data() {
    return data.duplicate();
  }

  public int length() {
    return data.remaining();
  }

  @Override
  public String toString() {
    return "bytes[" + data.remaining() + "]";
  }
}
