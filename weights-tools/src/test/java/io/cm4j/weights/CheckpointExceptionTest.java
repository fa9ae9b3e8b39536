package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** How a failed read of a checkpoint is worded: the file, then what went wrong, never "null". */
class CheckpointExceptionTest {
  private final Path file = Path.of("model.safetensors");

  private CheckpointException failing(IOException e) {
    return assertThrows(CheckpointException.class, () -> CheckpointException.reading(file, () -> {
      throw e;
    }));
  }

  @Test
  void anInterruptedReadSaysSo() {
    // A channel closed by Thread.interrupt() has no message.
    CheckpointException e = failing(new ClosedByInterruptException());
    assertEquals("model.safetensors: cannot read: the reading thread was interrupted",
        e.getMessage());
    assertInstanceOf(ClosedByInterruptException.class, e.getCause());
  }

  @Test
  void aFailureWithoutMessageIsNamedByItsType() {
    assertEquals("model.safetensors: cannot read: IOException",
        failing(new IOException()).getMessage());
    assertEquals("model.safetensors: cannot read: disk on fire",
        failing(new IOException("disk on fire")).getMessage());
  }

  @Test
  void aMissingFileIsNotFound() {
    assertEquals("model.safetensors: file not found",
        failing(new NoSuchFileException("model.safetensors")).getMessage());
  }
}
