package io.cm4j.weights.torch;

import io.cm4j.weights.CheckpointException;
import java.nio.file.Path;

/** Run in a child JVM with little direct memory by ZipBombTest: reads one tensor, says how. */
public final class InflateProbe {
  private InflateProbe() {}

  public static void main(String[] args) {
    try (TorchZipCheckpoint c = TorchZipCheckpoint.open(Path.of(args[0]))) {
      System.out.println("read " + c.get(args[1]).data().remaining() + " bytes");
    } catch (CheckpointException e) {
      System.out.println("refused " + e.getMessage());
    } catch (Throwable t) { // what the test is for: nothing but a CheckpointException
      System.out.println("failed " + t);
    }
  }
}
