package io.cm4j.weights;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What a reader keeps per tensor, by name, behind the closed flag that every lookup checks
 * first: one place for the readers' "is closed" and "no tensor named" wording. Public only
 * because the readers live in several packages.
 *
 * <p>Closing drops the map: where the slots hold views of a memory-mapped file, that lets the
 * mappings go. Safe to share between threads, as the readers holding one are.
 *
 * @param <S> the reader's record of one tensor
 */
public final class SlotTable<S> {
  private final Path path;
  private final String what;
  private volatile Map<String, S> slots; // empty once closed
  private volatile boolean closed;

  /**
   * {@code slots} in the file's order; {@code what} names the reader in the message of use after
   * closing ("checkpoint", "SafetensorsFile").
   */
  public SlotTable(Path path, String what, Map<String, S> slots) {
    this.path = path;
    this.what = what;
    this.slots = slots;
  }

  /** Tensor names in the file's order. */
  public List<String> names() {
    checkOpen();
    return List.copyOf(slots.keySet());
  }

  public boolean contains(String name) {
    checkOpen();
    return slots.containsKey(name);
  }

  /** The slot of a tensor; an unknown name is the file's fault, so a CheckpointException. */
  public S get(String name) throws CheckpointException {
    checkOpen();
    S s = slots.get(name);
    if (s == null) {
      throw new CheckpointException(path, "no tensor named '" + name + "'");
    }
    return s;
  }

  /** Refuses use after {@link #close}: a programming error, not a bad file. */
  public void checkOpen() {
    if (closed) {
      throw new IllegalStateException(what + " is closed: " + path);
    }
  }

  public boolean isClosed() {
    return closed;
  }

  /** How many tensors it holds: 0 once closed. */
  public int size() {
    return slots.size();
  }

  /** Marks it closed and drops the slots; harmless twice. */
  public void close() {
    closed = true;
    slots = Map.of();
  }
}
