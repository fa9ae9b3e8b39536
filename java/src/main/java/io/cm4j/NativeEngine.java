package io.cm4j;

import io.cm4j.internal.Cm4jNative;
import java.lang.ref.Cleaner;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A {@link UNet}'s native engine and the lock its calls take, kept apart from the UNet so that
 * a {@link Cleaner} can free the engine of a UNet nobody closed. {@link UNet#close()} is the
 * way to free it, at once; the Cleaner is the safety net for a forgotten one (with a warning),
 * whose weights, arena and threads would otherwise stay until the process ends. Freeing takes
 * the write lock and every call holds the read or write lock, so an engine is never freed
 * under a pass, even if the JIT lets the UNet become unreachable while its last native call
 * runs.
 */
final class NativeEngine implements Runnable {
  private static final Cleaner CLEANER = Cleaner.create();
  private static final System.Logger LOG = System.getLogger("io.cm4j");

  final ReadWriteLock lock = new ReentrantReadWriteLock();
  private Cm4jNative.cm4j_unet handle; // null once freed; guarded by lock
  private final String what; // "UNet[cuda:0, FP16]", for the warning
  private final Cleaner.Cleanable cleanable;

  /** Owns {@code handle} from now on; frees it when {@code owner} becomes unreachable unclosed. */
  NativeEngine(Object owner, Cm4jNative.cm4j_unet handle, String what) {
    this.handle = handle;
    this.what = what;
    this.cleanable = CLEANER.register(owner, this);
  }

  /** The engine; the caller holds {@link #lock}. */
  Cm4jNative.cm4j_unet handle() {
    if (handle == null) {
      throw new IllegalStateException("UNet is closed");
    }
    return handle;
  }

  /** Frees the engine now, waiting for calls in flight; a second call does nothing. */
  void close() {
    free(true);
    cleanable.clean(); // the Cleaner forgets it (its run() finds nothing left to free)
  }

  /** The Cleaner's action: the owner became unreachable. */
  @Override
  public void run() {
    free(false);
  }

  private void free(boolean closed) {
    lock.writeLock().lock();
    try {
      if (handle == null) {
        return;
      }
      if (!closed) {
        LOG.log(System.Logger.Level.WARNING, what + " was garbage-collected without close(): "
            + "its native memory is freed only now; close it (try-with-resources) when done");
      }
      Cm4jNative.cm4j_unet_destroy(handle);
      handle = null;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Whether the engine has been freed (by close() or the Cleaner). */
  boolean freed() {
    lock.readLock().lock();
    try {
      return handle == null;
    } finally {
      lock.readLock().unlock();
    }
  }
}
