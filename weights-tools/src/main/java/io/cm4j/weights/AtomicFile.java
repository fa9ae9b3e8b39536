package io.cm4j.weights;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Replacing a file all or nothing: the new bytes go to a temporary file beside it, which is then
 * renamed over it. A bare rename replaces whatever has the name, so the steps here write through
 * a symbolic link (the rename goes to the file it points at, and the link stays a link), refuse a
 * name that is a folder or not a regular file (a FIFO, a device, a socket) instead of putting a
 * regular file in its place, and give the new file the permissions of a plain create (0666 less
 * the umask) or, over an existing file, that file's permissions.
 */
public final class AtomicFile {
  private AtomicFile() {}

  /**
   * The file that writing {@code target} replaces or creates: {@code target} made absolute, or
   * for a symbolic link the real path of the file it points at. A link that points at nothing is
   * refused rather than followed: creating the file it names would write wherever the link says,
   * possibly in a folder the caller never named.
   *
   * @throws FileSystemException naming {@code target}, with the reason alone in
   *     {@link FileSystemException#getReason()}, when it cannot be written this way
   */
  public static Path destination(Path target) throws IOException {
    Path abs = target.toAbsolutePath();
    Path dest = abs;
    if (Files.isSymbolicLink(abs)) {
      try {
        dest = abs.toRealPath();
      } catch (NoSuchFileException e) {
        throw new FileSystemException(target.toString(), null, "is a symbolic link to "
            + Files.readSymbolicLink(abs) + ", which does not exist");
      }
    }
    if (Files.isDirectory(dest, LinkOption.NOFOLLOW_LINKS)) {
      throw new FileSystemException(target.toString(), null, "is a folder");
    }
    if (Files.exists(dest, LinkOption.NOFOLLOW_LINKS)
        && !Files.isRegularFile(dest, LinkOption.NOFOLLOW_LINKS)) {
      throw new FileSystemException(target.toString(), null, "not a regular file");
    }
    return dest;
  }

  /**
   * Creates an empty file under a hidden, unused name beside {@code destination} (a path from
   * {@link #destination}, so the rename stays within one folder), ending in {@code suffix}.
   * Unlike {@link Files#createTempFile}, which makes it readable by its owner only (a mode the
   * rename would carry to the result), it gets the permissions of a plain create.
   */
  public static Path createTemporary(Path destination, String suffix) throws IOException {
    return createBeside(destination, suffix, false);
  }

  /**
   * A new empty file, or folder, beside {@code destination} under a hidden, unused name
   * (".NAME.RANDOM" + {@code suffix}), with the permissions of a plain create.
   */
  static Path createBeside(Path destination, String suffix, boolean folder) throws IOException {
    Path dir = destination.toAbsolutePath().getParent();
    String prefix = "." + destination.getFileName() + ".";
    for (int attempt = 0; ; attempt++) {
      String random = String.format(Locale.ROOT, "%016x", ThreadLocalRandom.current().nextLong());
      Path p = dir.resolve(prefix + random + suffix);
      try {
        return folder ? Files.createDirectory(p) : Files.createFile(p);
      } catch (FileAlreadyExistsException e) {
        if (attempt == 100) { // 64 random bits: something else is wrong
          throw e;
        }
      }
    }
  }

  /**
   * Renames {@code tmp} (from {@link #createTemporary}) over the file that writing
   * {@code target} replaces ({@link #destination}, checked again now); an existing file's
   * permissions pass to the new one. Returns the path replaced.
   */
  public static Path moveIntoPlace(Path tmp, Path target) throws IOException {
    Path dest = destination(target);
    keepPermissions(dest, tmp);
    try {
      Files.move(tmp, dest, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, dest, StandardCopyOption.REPLACE_EXISTING);
    }
    return dest;
  }

  /** Gives {@code to} the permissions of {@code from}, if it exists and has POSIX ones. */
  private static void keepPermissions(Path from, Path to) throws IOException {
    if (!Files.isRegularFile(from, LinkOption.NOFOLLOW_LINKS)
        || Files.getFileAttributeView(from, PosixFileAttributeView.class) == null) {
      return;
    }
    Set<PosixFilePermission> permissions;
    try {
      permissions = Files.getPosixFilePermissions(from);
    } catch (NoSuchFileException goneMeanwhile) {
      return; // nothing to keep: the plain create's permissions stay
    }
    Files.setPosixFilePermissions(to, permissions);
  }
}
