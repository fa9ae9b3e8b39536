package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static io.cm4j.cli.CliRun.runOffline;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.cm4j.Golden;
import io.cm4j.cli.CliRun.Result;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.function.Predicate;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tiny model's torch .bin with one entry swapped for a run of deflated zeros (a few KB that
 * declare megabytes): {@code weights inspect} and {@code unet} refuse it with exit 2, naming the
 * entry and the sizes that disagree, from the sizes alone (nothing is inflated to see it).
 */
class ZipBombCliTest {
  /** The class embedding's storage record: 1000 x 128 float32, 512,000 bytes. */
  private static final long CLASS_EMBEDDING_BYTES = 512_000;

  @TempDir Path tmp;

  @Test
  void aStorageRecordOfDeflatedZerosIsRefused() throws IOException {
    Path bin = bomb(e -> e.getSize() == CLASS_EMBEDDING_BYTES, 64 << 20);
    String entry = "diffusion_pytorch_model/data/";
    assertBadInput(run("weights", "inspect", bin.toString()), bin.toString(), entry,
        " is 67108864 bytes (deflated), but its storage of 128000 torch.FloatStorage elements is "
        + "512000 bytes");
    Path out = tmp.resolve("o.safetensors");
    assertBadInput(unet(bin, out), bin.toString(), entry, "is 67108864 bytes (deflated)");
    assertFalse(Files.exists(out));
  }

  @Test
  void aDataPklOfDeflatedZerosIsRefused() throws IOException {
    Path bin = bomb(e -> e.getName().endsWith("/data.pkl"), 65 << 20);
    String problem = "zip entry 'diffusion_pytorch_model/data.pkl' is 68157440 bytes, more than "
        + "the limit of 67108864";
    assertBadInput(run("weights", "inspect", bin.toString()), bin.toString(), problem);
    assertBadInput(unet(bin, tmp.resolve("o.safetensors")), bin.toString(), problem);
  }

  private Result run(String... args) {
    return runOffline(tmp.resolve("env"), args);
  }

  private Result unet(Path bin, Path out) {
    Result r = run("unet", "--model", bin.getParent().toString(), "--inputs",
        Golden.file("tiny/unet_case.inputs.safetensors").toString(), "--output", out.toString());
    assertEquals(2, r.exit(), r.err());
    return r;
  }

  /**
   * unet/diffusion_pytorch_model.bin (with the tiny config beside it): the tiny model's, every
   * entry deflated, the one {@code which} picks holding {@code zeros} zero bytes.
   */
  private Path bomb(Predicate<ZipEntry> which, int zeros) throws IOException {
    Path bin = tmp.resolve("unet/diffusion_pytorch_model.bin");
    Files.createDirectories(bin.getParent());
    Files.copy(Golden.file("tiny/pipeline/unet/config.json"), bin.resolveSibling("config.json"));
    int swapped = 0;
    try (ZipFile src = new ZipFile(Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.bin")
        .toFile()); OutputStream os = Files.newOutputStream(bin);
        ZipOutputStream zip = new ZipOutputStream(os)) {
      for (ZipEntry e : Collections.list(src.entries())) {
        zip.putNextEntry(new ZipEntry(e.getName()));
        if (which.test(e)) {
          swapped++;
          zip.write(new byte[zeros]);
        } else {
          src.getInputStream(e).transferTo(zip);
        }
        zip.closeEntry();
      }
    }
    assertEquals(1, swapped, "entries picked");
    return bin;
  }
}
