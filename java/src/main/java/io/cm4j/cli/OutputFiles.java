package io.cm4j.cli;

import io.cm4j.pipeline.ImageOutput;
import io.cm4j.weights.SafetensorsWriter;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A command's output files, written all or nothing: each is first written to a hidden
 * temporary file beside its target ({@link #stage}), and only when every one is complete are
 * they renamed into place ({@link #commit}), in turn (a rename within one folder, which only a
 * vanished folder or disk fails). {@link #close()} removes whatever was staged but
 * not committed, and a folder {@link #createFolder} made, if it is still empty. Not
 * thread-safe.
 */
final class OutputFiles implements AutoCloseable {
  private final Map<Path, Path> staged = new LinkedHashMap<>(); // target -> temporary file
  private final List<Path> createdFolders = new ArrayList<>();

  /**
   * Checks that {@code file} can be written: not a folder, in a folder that exists and is
   * writable. The message names {@code option}.
   */
  static void checkWritableFile(String option, Path file) throws UsageException {
    if (Files.isDirectory(file)) {
      throw new UsageException(option + " " + file + ": is a folder, expected a file name");
    }
    checkWritableFolder(option + " " + file, file.toAbsolutePath().getParent());
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
      if (outTensor != null
          && png.toAbsolutePath().normalize().equals(outTensor.toAbsolutePath().normalize())) {
        throw new UsageException("--out-tensor " + outTensor + ": is also a PNG of --out");
      }
    }
    return pngs;
  }

  private static Pngs pngTargets(Path out, boolean tensorOnly, String defaultPng, int images)
      throws UsageException {
    if (out == null) {
      if (tensorOnly) {
        return new Pngs(List.of(), null);
      }
      checkWritableFile("--out (default)", Path.of(defaultPng));
      return new Pngs(pngFiles(Path.of(defaultPng), images), null);
    }
    String name = out.getFileName() == null ? "" : out.getFileName().toString();
    if (Files.isDirectory(out) || (!name.contains(".") && !Files.exists(out))) {
      Path newFolder = null;
      if (Files.isDirectory(out)) {
        checkWritableFolder("--out " + out, out);
      } else {
        checkWritableFolder("--out " + out, out.toAbsolutePath().getParent());
        newFolder = out;
      }
      List<Path> files = new ArrayList<>();
      for (int i = 0; i < images; i++) {
        files.add(out.resolve(String.format(Locale.ROOT, "%04d.png", i)));
      }
      return new Pngs(files, newFolder);
    }
    if (!name.toLowerCase(Locale.ROOT).endsWith(".png")) {
      throw new UsageException("--out " + out + ": expected a .png file name or a folder");
    }
    checkWritableFile("--out", out);
    return new Pngs(pngFiles(out, images), null);
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
        throw new IOException(target + ": cannot write: " + e.getMessage(), e);
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
      throw new IOException(what + ": cannot write: " + e.getMessage(), e);
    }
  }

  /** Creates {@code dir} (one level) unless it exists; close() removes it again if unused. */
  void createFolder(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectory(dir);
      createdFolders.add(dir);
    }
  }

  /** A temporary path beside {@code target} to write the file to; nothing is created yet. */
  Path stage(Path target) {
    if (staged.containsKey(target)) {
      throw new IllegalStateException(target + " is staged twice");
    }
    Path abs = target.toAbsolutePath();
    Path tmp = abs.resolveSibling("." + abs.getFileName() + "." + ProcessHandle.current().pid()
        + "." + staged.size() + ".partial");
    staged.put(target, tmp);
    return tmp;
  }

  /** Renames every staged file over its target, in staging order; returns the targets. */
  List<Path> commit() throws IOException {
    List<Path> done = new ArrayList<>();
    for (Map.Entry<Path, Path> e : staged.entrySet()) {
      try {
        Files.move(e.getValue(), e.getKey(), StandardCopyOption.ATOMIC_MOVE,
            StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException notAtomic) {
        Files.move(e.getValue(), e.getKey(), StandardCopyOption.REPLACE_EXISTING);
      }
      done.add(e.getKey());
    }
    staged.clear();
    createdFolders.clear();
    return done;
  }

  /** Removes staged files not committed, then folders this made that are still empty. */
  @Override
  public void close() {
    for (Path tmp : staged.values()) {
      try {
        Files.deleteIfExists(tmp);
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
