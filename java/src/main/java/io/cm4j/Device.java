package io.cm4j;

import java.util.Objects;

/** Where a UNet runs: {@code cpu}, {@code cuda} (the default CUDA device) or {@code cuda:N}. */
public final class Device {
  /** The CPU backend. */
  public static final Device CPU = new Device(Kind.CPU, -1);

  /** Backend kinds. */
  public enum Kind {
    CPU,
    CUDA
  }

  private final Kind kind;
  private final int index; // -1: the default device of the kind

  private Device(Kind kind, int index) {
    this.kind = kind;
    this.index = index;
  }

  /** CUDA device {@code index} (0-based, as in {@code cuda:N}). */
  public static Device cuda(int index) {
    if (index < 0) {
      throw new IllegalArgumentException("CUDA device index must be >= 0, found " + index);
    }
    return new Device(Kind.CUDA, index);
  }

  /**
   * Parses {@code cpu}, {@code cuda} or {@code cuda:N}.
   *
   * @throws IllegalArgumentException naming the text and the accepted forms
   */
  public static Device parse(String text) {
    Objects.requireNonNull(text, "device");
    String s = text.trim();
    if (s.equals("cpu")) {
      return CPU;
    }
    if (s.equals("cuda")) {
      return new Device(Kind.CUDA, -1);
    }
    if (s.startsWith("cuda:")) {
      String n = s.substring(5);
      if (!n.isEmpty() && n.length() <= 4 && n.chars().allMatch(c -> c >= '0' && c <= '9')) {
        return cuda(Integer.parseInt(n));
      }
      throw new IllegalArgumentException("invalid device '" + text
          + "': expected a device number after 'cuda:', found '" + n + "'");
    }
    throw new IllegalArgumentException("invalid device '" + text
        + "': expected cpu, cuda or cuda:N");
  }

  public Kind kind() {
    return kind;
  }

  /** The CUDA device number; 0 for plain {@code cuda}; -1 for the CPU. */
  public int index() {
    return kind == Kind.CUDA ? Math.max(index, 0) : -1;
  }

  /** The form the native library and the CLI use: cpu, cuda or cuda:N. */
  @Override
  public String toString() {
    return kind == Kind.CPU ? "cpu" : index < 0 ? "cuda" : "cuda:" + index;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Device && ((Device) o).kind == kind && ((Device) o).index() == index();
  }

  @Override
  public int hashCode() {
    return kind.hashCode() * 31 + index();
  }
}
