package io.cm4j.weights.pickle;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;

/**
 * The bytes a pickle is read from: a buffer already in memory, or a region of a file that is
 * memory-mapped piece by piece (so a pickle of any size is read without being copied into the
 * heap, and the byte strings it holds, tensor data, stay views of the mapping).
 */
public abstract class PickleSource {
  PickleSource() {}

  /** Length of the pickle in bytes. */
  public abstract long size();

  /** A read-only little-endian view of bytes [pos, pos + len), which lie inside the source. */
  abstract ByteBuffer map(long pos, int len) throws IOException;

  /** The remaining bytes of a buffer (heap or direct); the buffer is not copied. */
  public static PickleSource of(ByteBuffer buffer) {
    ByteBuffer b = buffer.slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    return new PickleSource() {
      @Override
      public long size() {
        return b.capacity();
      }

      @Override
      ByteBuffer map(long pos, int len) {
        return b.duplicate().position((int) pos).limit((int) pos + len).slice()
            .order(ByteOrder.LITTLE_ENDIAN);
      }
    };
  }

  /** Bytes [start, start + length) of an open file; the channel must stay open while reading. */
  public static PickleSource of(FileChannel channel, long start, long length) {
    return new PickleSource() {
      @Override
      public long size() {
        return length;
      }

      @Override
      ByteBuffer map(long pos, int len) throws IOException {
        return channel.map(FileChannel.MapMode.READ_ONLY, start + pos, len)
            .order(ByteOrder.LITTLE_ENDIAN);
      }
    };
  }
}
