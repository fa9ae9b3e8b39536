package io.cm4j.hub;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Exclusive right to download one blob: {@code .locks/models--org--name/{etag}.lock}, held
 * with a {@link FileLock} against other processes and a {@link ReentrantLock} against other
 * threads of this JVM (a second FileLock on the same file from one JVM throws instead of
 * waiting). Like huggingface_hub's WeakFileLock, a file system without locks is tolerated.
 *
 * <p>Python's filelock uses {@code flock}, a FileLock is an {@code fcntl} lock: on Linux they
 * do not exclude each other, so a Python and a Java downloader of the same blob each write
 * their own {@code .incomplete} file and the last atomic rename wins with identical bytes.
 */
final class BlobLock implements AutoCloseable {
  private static final ConcurrentHashMap<Path, ReentrantLock> IN_PROCESS =
      new ConcurrentHashMap<>();

  private final ReentrantLock threads;
  private final FileChannel channel;
  private final FileLock processes;

  private BlobLock(ReentrantLock threads, FileChannel channel, FileLock processes) {
    this.threads = threads;
    this.channel = channel;
    this.processes = processes;
  }

  /** Blocks until this thread holds the lock of {@code lockFile}, creating the file. */
  static BlobLock acquire(Path lockFile) throws IOException {
    Files.createDirectories(lockFile.getParent());
    FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE,
        StandardOpenOption.WRITE);
    ReentrantLock threads;
    try {
      // one key per file however the cache root was spelled (symlinks, relative paths)
      threads = IN_PROCESS.computeIfAbsent(lockFile.toRealPath(), k -> new ReentrantLock());
    } catch (IOException e) {
      channel.close();
      throw e;
    }
    threads.lock();
    FileLock processes = null;
    try {
      processes = channel.lock();
    } catch (ClosedChannelException interrupted) {
      threads.unlock();
      throw interrupted;
    } catch (IOException unsupported) {
      // e.g. some network file systems: go on with the in-process lock alone
    }
    return new BlobLock(threads, channel, processes);
  }

  @Override
  public void close() throws IOException {
    try {
      if (processes != null) {
        processes.release();
      }
      channel.close();
    } finally {
      threads.unlock();
    }
  }
}
