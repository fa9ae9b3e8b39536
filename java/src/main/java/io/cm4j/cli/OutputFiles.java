package io.cm4j.cli;

import io.cm4j.pipeline.ImageOutput;
import io.cm4j.weights.AtomicFile;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.OutputException;
import io.cm4j.weights.SafetensorsWriter;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A command's output files, written all or nothing: each is first written to a hidden
 * temporary file beside its target ({@link #stage}), and only when every one is complete are
 * they renamed into place ({@link #commit}), in turn (a rename within one folder, which only a
 * vanished folder or disk fails). A target that is a symbolic link is written through, as
 * {@link AtomicFile} does. {@link #close()} removes whatever was staged but not committed, and
 * a folder {@link #createFolder} made, if it is still empty. Not thread-safe.
 */
final class OutputFiles implements AutoCloseable {
  private final Map<Path, Staged> staged = new LinkedHashMap<>(); // by target
  private final List<Path> createdFolders = new ArrayList<>();

  /** A staged file: the temporary file and the file it replaces (see AtomicFile#destination). */
  private record Staged(Path tmp, Path destination) {}

  /**
   * Checks that {@code file} can be written: not a folder, nor a FIFO, device or socket (a
   * rename would replace it with a regular file), nor a symbolic link to nothing; in a folder
   * that exists and is writable (for a link, the folder of the file it points at). The message
   * names {@code option}.
   */
  static void checkWritableFile(String option, Path file) throws UsageException {
    if (Files.isDirectory(file)) {
      throw new UsageException(option + " " + file + ": is a folder, expected a file name");
    }
    Path dest = destination(option + " " + file, file);
    checkWritableFolder(option + " " + file, dest.getParent());
  }

  /** The file that writing {@code file} replaces ({@link AtomicFile#destination}); as usage. */
  private static Path destination(String what, Path file) throws UsageException {
    try {
      return AtomicFile.destination(file);
    } catch (IOException e) {
      throw new UsageException(what + ": " + CheckpointException.reason(e), e);
    }
  }

  /** Checks that {@code dir} is an existing writable folder; {@code what} starts the message. */
  static void checkWritableFolder(String what, Path dir) throws UsageException {
    if (dir == null || !Files.isDirectory(dir)) {
      throw new UsageException(what + ": folder " + dir + " does not exist");
    }
    if (!Files.isWritable(dir)) {
      throw new UsageException(what + ": folder " + dir + " is not writable");
    }
  }

  /** The PNG files a command writes, and the --out folder to make for them (or null). */
  record Pngs(List<Path> files, Path newFolder) {}

  /**
   * The PNG files of {@code --out} for {@code images} images, checked to be writable and not
   * to be {@code outTensor} too: FILE.png (FILE-0.png, ... for a batch), or DIR/0000.png, ...
   * for an existing folder or a name without extension (made when the files are written).
   * Without --out, {@code defaultPng} in the current folder, or nothing when only a tensor
   * ({@code outTensor}, null for none) is written.
   */
  static Pngs pngTargets(Path out, Path outTensor, String defaultPng, int images)
      throws UsageException {
    Pngs pngs = pngTargets(out, outTensor != null, defaultPng, images);
    for (Path png : pngs.files()) {
      if (outTensor != null && sameFile(png, outTensor)) {
        throw new UsageException("--out-tensor " + outTensor + ": is also a PNG of --out");
      }
    }
    return pngs;
  }

  /** Whether writing {@code a} and {@code b} would replace one file (a link may name it). */
  private static boolean sameFile(Path a, Path b) {
    return real(a).equals(real(b));
  }

  private static Path real(Path p) {
    try {
      return AtomicFile.destination(p).normalize();
    } catch (IOException e) {
      return p.toAbsolutePath().normalize(); // refused by the checks of the file itself
    }
  }

  private static Pngs pngTargets(Path out, boolean tensorOnly, String defaultPng, int images)
      throws UsageException {
    if (out == null) {
      if (tensorOnly) {
        return new Pngs(List.of(), null);
      }
      return checkedFiles("--out (default)", pngFiles(Path.of(defaultPng), images));
    }
    String name = out.getFileName() == null ? "" : out.getFileName().toString();
    if (Files.isDirectory(out) || (!name.contains(".") && !Files.exists(out))) {
      List<Path> files = new ArrayList<>();
      for (int i = 0; i < images; i++) {
        files.add(out.resolve(String.format(Locale.ROOT, "%04d.png", i)));
      }
      if (Files.isDirectory(out)) {
        checkWritableFolder("--out " + out, out);
        return checkedFiles("--out", files); // 0000.png... may be there already
      }
      checkWritableFolder("--out " + out, out.toAbsolutePath().getParent());
      return new Pngs(files, out);
    }
    if (!name.toLowerCase(Locale.ROOT).endsWith(".png")) {
      throw new UsageException("--out " + out + ": expected a .png file name or a folder");
    }
    return checkedFiles("--out", pngFiles(out, images));
  }

  /** {@code files}, each checked by {@link #checkWritableFile}, in an existing folder. */
  private static Pngs checkedFiles(String option, List<Path> files) throws UsageException {
    for (Path file : files) {
      checkWritableFile(option, file);
    }
    return new Pngs(files, null);
  }

  /** FILE.png for one image; FILE-0.png, FILE-1.png, ... for a batch. */
  private static List<Path> pngFiles(Path file, int images) {
    if (images == 1) {
      return List.of(file);
    }
    String name = file.getFileName().toString();
    String stem = name.substring(0, name.length() - ".png".length());
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < images; i++) {
      files.add(file.resolveSibling(stem + "-" + i + name.substring(stem.length())));
    }
    return files;
  }

  /** Makes the folder of {@code pngs} if needed and stages one image per file. */
  void stagePngs(Pngs pngs, List<BufferedImage> images) throws IOException {
    if (pngs.newFolder() != null) {
      createFolder(pngs.newFolder());
    }
    for (int i = 0; i < pngs.files().size(); i++) {
      Path target = pngs.files().get(i);
      try {
        ImageOutput.writePng(images.get(i), stage(target));
      } catch (IOException e) {
        throw new OutputException(target, "cannot write: " + CheckpointException.reason(e), e);
      }
    }
  }

  /**
   * Writes {@code tensors} to {@code file}; a failure is told as {@code what} (the option and
   * the file the user named, as "--output out.safetensors"), not as a staging path.
   */
  static void writeTensors(SafetensorsWriter tensors, Path file, String what)
      throws IOException {
    try {
      tensors.write(file);
    } catch (IOException e) {
      throw new OutputException(Path.of(what), "cannot write: " + CheckpointException.reason(e),
          e);
    }
  }

  /** Creates {@code dir} (one level) unless it exists; close() removes it again if unused. */
  void createFolder(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectory(dir);
      createdFolders.add(dir);
    }
  }

  /**
   * A temporary path to write the file to, beside the file {@code target} replaces (for a
   * symbolic link, the file it points at, so that the rename stays in one folder); nothing is
   * created yet.
   */
  Path stage(Path target) throws IOException {
    if (staged.containsKey(target)) {
      throw new IllegalStateException(target + " is staged twice");
    }
    Path dest = AtomicFile.destination(target);
    Path tmp = dest.resolveSibling("." + dest.getFileName() + "." + ProcessHandle.current().pid()
        + "." + staged.size() + ".partial");
    staged.put(target, new Staged(tmp, dest));
    return tmp;
  }

  /**
   * Renames every staged file over the file its target names, in staging order, once every
   * target is checked again (so that a FIFO put in a target's place since stops them all, not
   * half of them); returns the targets.
   */
  List<Path> commit() throws IOException {
    for (Staged s : staged.values()) {
      AtomicFile.destination(s.destination());
    }
    List<Path> done = new ArrayList<>();
    for (Map.Entry<Path, Staged> e : staged.entrySet()) {
      AtomicFile.moveIntoPlace(e.getValue().tmp(), e.getValue().destination());
      done.add(e.getKey());
    }
    staged.clear();
    createdFolders.clear();
    return done;
  }

  /** Removes staged files not committed, then folders this made that are still empty. */
  @Override
  public void close() {
    for (Staged s : staged.values()) {
      try {
        Files.deleteIfExists(s.tmp());
      } catch (IOException ignored) {
        // best effort: the original failure is what the user needs to see
      }
    }
    staged.clear();
    for (Path dir : createdFolders) {
      try {
        Files.deleteIfExists(dir); // fails, harmlessly, if something else was put there
      } catch (IOException ignored) {
        // left in place
      }
    }
    createdFolders.clear();
  }
}
