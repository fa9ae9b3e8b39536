package io.cm4j.hub;

import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Downloads one blob the way huggingface_hub does: into {@code blobs/{etag}.{random}.incomplete},
 * retrying a dropped connection from where it stopped with {@code Range: bytes=n-}, and (unlike
 * huggingface_hub, which deletes it) resuming the partial file of an interrupted earlier run; a server that answers a Range request with a plain 200 gets the file from
 * the start. The size is checked, and the SHA-256 when the etag is one (an LFS file), before
 * the atomic rename to {@code blobs/{etag}}. The caller holds the blob's {@link BlobLock}.
 */
final class BlobDownloader {
  /** Attempts in a row that bring no new byte before giving up (huggingface_hub: 5). */
  static final int MAX_ATTEMPTS_WITHOUT_PROGRESS = 5;
  /** Marks our partial files apart from huggingface_hub's. */
  static final String PARTIAL_TAG = "cm4j";

  private final HubHttp http;
  private final long retryDelayMillis;

  BlobDownloader(HubHttp http, long retryDelayMillis) {
    this.http = http;
    this.retryDelayMillis = retryDelayMillis;
  }

  void download(Where where, HubHttp.FileMetadata meta, Path blob, Progress progress)
      throws HubException, IOException {
    Path partial = claimPartial(blob.getParent(), meta.etag());
    boolean moved = false;
    try {
      String sha256 = receive(where, meta, partial, progress);
      if (sha256 != null && !sha256.equals(meta.etag())) {
        throw new HubException(HubException.Kind.CORRUPT, where + ": SHA-256 of the download is "
            + sha256 + ", expected " + meta.etag() + "; run again to download it afresh");
      }
      Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
      moved = true;
    } catch (HubException e) {
      if (e.kind() == HubException.Kind.CORRUPT) {
        Files.deleteIfExists(partial); // resuming would keep the bad bytes
      }
      throw e;
    } finally {
      if (moved) {
        progress.finished(where.path());
      } else {
        progress.aborted(where.path());
      }
    }
  }

  /**
   * One of this blob's left-over {@code .incomplete} files to resume (the longest; the others
   * are dead, as the lock is held), or a new one. Ours are {@code {etag}.cm4j{8 hex}.incomplete};
   * huggingface_hub's ({@code {etag}.{8 hex}.incomplete}, or {@code {etag}.incomplete} before
   * 1.x) are never touched: a Python process may be writing one without seeing our lock.
   */
  static Path claimPartial(Path blobs, String etag) throws IOException {
    Files.createDirectories(blobs);
    Path best = null;
    long bestSize = -1;
    try (DirectoryStream<Path> found =
        Files.newDirectoryStream(blobs, etag + "." + PARTIAL_TAG + "*.incomplete")) {
      for (Path p : found) {
        long size = Files.size(p);
        if (size > bestSize) {
          if (best != null) {
            Files.deleteIfExists(best);
          }
          best = p;
          bestSize = size;
        } else {
          Files.deleteIfExists(p);
        }
      }
    }
    if (best != null) {
      return best;
    }
    String random = String.format(Locale.ROOT, "%08x", ThreadLocalRandom.current().nextInt());
    return Files.createFile(blobs.resolve(etag + "." + PARTIAL_TAG + random + ".incomplete"));
  }

  /** Fills {@code partial} up to the announced size; returns its SHA-256 when the etag is one. */
  private String receive(Where where, HubHttp.FileMetadata meta, Path partial, Progress progress)
      throws HubException, IOException {
    try (FileChannel out = FileChannel.open(partial, StandardOpenOption.WRITE)) {
      Partial p = new Partial(out, Names.isSha256(meta.etag()) ? sha256() : null);
      p.resume(partial, meta.size());
      progress.started(where.path(), meta.size(), p.have);
      int failuresInARow = 0;
      while (p.have < meta.size()) {
        long before = p.have;
        try {
          fetchOnce(where, meta, p, progress);
        } catch (IOException e) {
          failuresInARow = p.have > before ? 1 : failuresInARow + 1;
          if (failuresInARow >= MAX_ATTEMPTS_WITHOUT_PROGRESS
              || Thread.currentThread().isInterrupted()) {
            throw new HubException(HubException.Kind.NETWORK, where + ": download stopped at "
                + p.have + " of " + meta.size() + " bytes: " + HubHttp.describe(e)
                + "; run again to resume", e);
          }
          pause(where);
        }
      }
      out.force(false); // the blob is named by its hash: never let a crash leave it half-written
      return p.sha == null ? null : HexFormat.of().formatHex(p.sha.digest());
    }
  }

  /** One GET from {@code p.have} on; an IOException leaves the bytes received so far. */
  private void fetchOnce(Where where, HubHttp.FileMetadata meta, Partial p, Progress progress)
      throws HubException, IOException {
    HttpURLConnection c = http.download(where, meta.location(), p.have);
    try {
      int status = c.getResponseCode();
      if (status == 416 || (status == 200 && p.have > 0)
          || (status == 206 && !rangeStartsAt(c.getHeaderField("Content-Range"), p.have))) {
        // the server will not continue from here: start the file over
        p.restart();
        progress.advanced(0);
        if (status != 200) {
          throw new IOException("server did not resume (HTTP " + status + ")");
        }
      }
      try (InputStream in = c.getInputStream()) {
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = in.read(buf)) >= 0) {
          if (p.have + n > meta.size()) {
            throw new HubException(HubException.Kind.CORRUPT, where
                + ": the server sent more than the announced " + meta.size() + " bytes");
          }
          p.append(buf, n);
          progress.advanced(p.have);
        }
      }
      if (p.have < meta.size()) {
        throw new IOException("connection closed after " + p.have + " of " + meta.size()
            + " bytes");
      }
    } catch (IOException | HubException e) {
      c.disconnect();
      throw e;
    }
  }

  private static boolean rangeStartsAt(String contentRange, long offset) {
    return contentRange != null && contentRange.trim().startsWith("bytes " + offset + "-");
  }

  private void pause(Where where) throws HubException {
    try {
      Thread.sleep(retryDelayMillis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HubException(HubException.Kind.NETWORK, where + ": download interrupted", e);
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  /** The {@code .incomplete} file being filled, and the hash of what it holds. */
  private static final class Partial {
    final FileChannel out;
    final MessageDigest sha;
    long have;

    Partial(FileChannel out, MessageDigest sha) {
      this.out = out;
      this.sha = sha;
    }

    /** Continues after what is on disk (hashing it); more than {@code size} bytes is junk. */
    void resume(Path file, long size) throws IOException {
      have = out.size();
      if (have > size) {
        restart();
        return;
      }
      if (sha != null && have > 0) {
        try (InputStream in = Files.newInputStream(file)) {
          byte[] buf = new byte[1 << 16];
          long left = have;
          int n;
          while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0) {
            sha.update(buf, 0, n);
            left -= n;
          }
        }
      }
      out.position(have);
    }

    void restart() throws IOException {
      out.truncate(0);
      out.position(0);
      have = 0;
      if (sha != null) {
        sha.reset();
      }
    }

    void append(byte[] buf, int n) throws IOException {
      ByteBuffer b = ByteBuffer.wrap(buf, 0, n);
      while (b.hasRemaining()) {
        out.write(b);
      }
      if (sha != null) {
        sha.update(buf, 0, n);
      }
      have += n;
    }
  }
}
