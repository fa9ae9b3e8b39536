package io.cm4j.cli;

import static io.cm4j.cli.CliRun.list;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.TestData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * All or nothing: staged files appear together on commit, and vanish on a failure; a link is
 * written through, a FIFO refused, and permissions are those of a plain create or of the file
 * replaced.
 */
class OutputFilesTest {
  @TempDir Path tmp;

  @Test
  void nothingIsLeftWhenAWriteFailsHalfway() throws Exception {
    Path dir = tmp.resolve("new");
    try (OutputFiles files = new OutputFiles()) {
      files.createFolder(dir);
      Files.writeString(files.stage(dir.resolve("0000.png")), "first");
      files.stage(dir.resolve("0001.png")); // the second write fails before creating its file
      assertEquals(1, list(dir).size(), "staged under a hidden name");
      assertEquals(List.of(), list(dir).stream().filter(n -> !n.startsWith(".")).toList());
    }
    assertEquals(List.of(), list(tmp), "staged file and the folder made for it are gone");
  }

  @Test
  void commitRenamesEveryFileIntoPlace() throws Exception {
    Files.writeString(tmp.resolve("a.png"), "old");
    try (OutputFiles files = new OutputFiles()) {
      Files.writeString(files.stage(tmp.resolve("a.png")), "new a");
      Files.writeString(files.stage(tmp.resolve("b.safetensors")), "new b");
      assertEquals(List.of(tmp.resolve("a.png"), tmp.resolve("b.safetensors")), files.commit());
    }
    assertEquals(List.of("a.png", "b.safetensors"), list(tmp));
    assertEquals("new a", Files.readString(tmp.resolve("a.png")));
  }

  @Test
  void commitWritesThroughALinkAndKeepsTheReplacedFilesPermissions() throws Exception {
    Path sub = Files.createDirectory(tmp.resolve("sub"));
    Path real = Files.writeString(sub.resolve("real.png"), "old");
    Set<PosixFilePermission> groupRead = PosixFilePermissions.fromString("rw-r-----");
    Set<PosixFilePermission> plain = TestData.plainCreatePermissions(tmp);
    Files.setPosixFilePermissions(real, groupRead);
    Path link = Files.createSymbolicLink(tmp.resolve("link.png"), Path.of("sub/real.png"));
    try (OutputFiles files = new OutputFiles()) {
      Path staged = files.stage(link);
      assertEquals(sub, staged.getParent(), "staged beside the file the link points at");
      Files.writeString(staged, "new");
      Files.writeString(files.stage(tmp.resolve("b.png")), "b");
      assertEquals(List.of(link, tmp.resolve("b.png")), files.commit());
    }
    assertTrue(Files.isSymbolicLink(link), "the link stays a link");
    assertEquals("new", Files.readString(real));
    assertEquals(groupRead, Files.getPosixFilePermissions(real));
    assertEquals(plain, Files.getPosixFilePermissions(tmp.resolve("b.png")));
    assertEquals(List.of("b.png", "link.png", "sub"), list(tmp));
    assertEquals(List.of("real.png"), list(sub));
  }

  @Test
  void aFifoOrALinkToNothingIsRefused() throws Exception {
    Path fifo = TestData.mkfifo(tmp.resolve("f.safetensors"));
    UsageException e = assertThrows(UsageException.class,
        () -> OutputFiles.checkWritableFile("--out-tensor", fifo));
    assertEquals("--out-tensor " + fifo + ": not a regular file", e.getMessage());
    try (OutputFiles files = new OutputFiles()) {
      assertThrows(IOException.class, () -> files.stage(fifo));
    }
    Path link = Files.createSymbolicLink(tmp.resolve("x.png"), Path.of("gone/x.png"));
    e = assertThrows(UsageException.class, () -> OutputFiles.checkWritableFile("--out", link));
    assertEquals("--out " + link + ": is a symbolic link to gone/x.png, which does not exist",
        e.getMessage());
    assertTrue(TestData.isOther(fifo), "still a FIFO");
    assertEquals(List.of("f.safetensors", "x.png"), list(tmp));
  }

  @Test
  void aPngLinkedToTheTensorFileIsRefused() throws Exception {
    Path tensor = tmp.resolve("x.safetensors");
    Path link = Files.createSymbolicLink(tmp.resolve("x.png"), tensor.getFileName());
    Files.writeString(tensor, "old");
    UsageException e = assertThrows(UsageException.class,
        () -> OutputFiles.pngTargets(link, tensor, "cm4j.png", 1));
    assertEquals("--out-tensor " + tensor + ": is also a PNG of --out", e.getMessage());
  }
}
