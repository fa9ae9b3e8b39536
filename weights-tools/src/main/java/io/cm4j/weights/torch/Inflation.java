package io.cm4j.weights.torch;

import io.cm4j.weights.CheckpointException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Inflates a deflated zip entry into a direct buffer that grows with the output the stream
 * actually makes, never past the size the entry declares: a small entry that declares a large
 * size costs only what it really inflates to, and a stream that makes more than it declared is
 * refused after one byte too many. Failing to allocate is a {@link CheckpointException} naming
 * the entry, not an {@link OutOfMemoryError}.
 */
final class Inflation {
  /** The first piece of output; each further piece doubles what is held, up to the size. */
  private static final int FIRST_CHUNK = 1 << 20;

  private Inflation() {}

  /** The inflated bytes of {@code e}, whose compressed bytes are {@code raw}. */
  static ByteBuffer inflate(Path path, ZipIndex.Entry e, ByteBuffer raw)
      throws CheckpointException {
    if (e.method() != 8) {
      throw new CheckpointException(path, "zip entry '" + e.name() + "' uses compression method "
          + e.method() + "; only stored and deflated entries are supported");
    }
    if (e.size() > Integer.MAX_VALUE) {
      throw new CheckpointException(path, "deflated zip entry '" + e.name() + "' declares "
          + e.size() + " bytes; deflated entries over 2 GiB are not supported");
    }
    int declared = (int) e.size();
    ByteBuffer out = allocate(path, e, Math.min(declared, FIRST_CHUNK));
    byte[] beyond = new byte[1];
    Inflater inf = new Inflater(true);
    try {
      inf.setInput(raw);
      while (!inf.finished()) {
        int made;
        if (out.hasRemaining()) {
          made = inf.inflate(out);
        } else if (out.capacity() < declared) {
          out = grow(path, e, out, (int) Math.min(declared, 2L * out.capacity()));
          continue;
        } else if (inf.inflate(beyond) > 0) {
          throw new CheckpointException(path, "zip entry '" + e.name()
              + "' inflates to more than its declared " + declared + " bytes");
        } else {
          made = 0;
        }
        if (made == 0 && (inf.needsInput() || inf.needsDictionary())) {
          break;
        }
      }
      if (!inf.finished() || out.position() != declared) {
        throw new CheckpointException(path, "zip entry '" + e.name()
            + "' does not inflate to its declared " + declared + " bytes");
      }
    } catch (DataFormatException ex) {
      throw new CheckpointException(path, "zip entry '" + e.name() + "' is corrupt: "
          + ex.getMessage());
    } finally {
      inf.end();
    }
    return out.flip();
  }

  private static ByteBuffer grow(Path path, ZipIndex.Entry e, ByteBuffer full, int capacity)
      throws CheckpointException {
    ByteBuffer bigger = allocate(path, e, capacity);
    bigger.put(full.flip());
    return bigger;
  }

  private static ByteBuffer allocate(Path path, ZipIndex.Entry e, int capacity)
      throws CheckpointException {
    try {
      return ByteBuffer.allocateDirect(capacity).order(ByteOrder.LITTLE_ENDIAN);
    } catch (OutOfMemoryError oom) {
      throw new CheckpointException(path, "zip entry '" + e.name() + "' (" + e.size()
          + " bytes inflated): cannot allocate " + capacity + " bytes: " + oom.getMessage());
    }
  }
}
