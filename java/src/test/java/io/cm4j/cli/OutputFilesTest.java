package io.cm4j.cli;

import static io.cm4j.cli.CliRun.list;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** All or nothing: staged files appear together on commit, and vanish on a failure. */
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
}
