package io.cm4j;

import java.util.Objects;

/**
 * Where a UNet runs: {@code cpu} (one thread per core), {@code cpu:N} (N threads), {@code cuda}
 * (the default CUDA device) or {@code cuda:N}.
 */
public final class Device {
  /** The CPU backend, one thread per core. */
  public static final Device CPU = new Device(Kind.CPU, -1);

  private static final int MAX_THREADS = 1024;

  /** Backend kinds. */
  public enum Kind {
    CPU,
    CUDA
  }

  private final Kind kind;
  private final int index; // CUDA: the device number; CPU: the thread count; -1: the default

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

  /** The CPU backend on {@code threads} threads (1 to 1024). */
  public static Device cpu(int threads) {
    if (threads < 1 || threads > MAX_THREADS) {
      throw new IllegalArgumentException(
          "CPU thread count must be between 1 and " + MAX_THREADS + ", found " + threads);
    }
    return new Device(Kind.CPU, threads);
  }

  /**
   * Parses {@code cpu}, {@code cpu:THREADS}, {@code cuda} or {@code cuda:N}.
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
    int colon = s.indexOf(':');
    String kind = colon < 0 ? s : s.substring(0, colon);
    if (colon > 0 && (kind.equals("cpu") || kind.equals("cuda"))) {
      String n = s.substring(colon + 1);
      String what = kind.equals("cpu") ? "a thread count" : "a device number";
      if (n.isEmpty() || n.length() > 4 || !n.chars().allMatch(c -> c >= '0' && c <= '9')) {
        throw new IllegalArgumentException("invalid device '" + text + "': expected " + what
            + " after '" + kind + ":', found '" + n + "'");
      }
      int value = Integer.parseInt(n);
      if (kind.equals("cuda")) {
        return cuda(value);
      }
      if (value < 1 || value > MAX_THREADS) {
        throw new IllegalArgumentException("invalid device '" + text
            + "': expected a thread count between 1 and " + MAX_THREADS + ", found " + value);
      }
      return cpu(value);
    }
    throw new IllegalArgumentException("invalid device '" + text
        + "': expected cpu, cpu:THREADS, cuda or cuda:N");
  }

  public Kind kind() {
    return kind;
  }

  /** The CPU thread count; 0 for plain {@code cpu} (one per core) and for CUDA devices. */
  public int threads() {
    return kind == Kind.CPU ? Math.max(index, 0) : 0;
  }

  /** The CUDA device number; 0 for plain {@code cuda}; -1 for the CPU. */
  public int index() {
    return kind == Kind.CUDA ? Math.max(index, 0) : -1;
  }

  /** The form the native library and the CLI use: cpu, cpu:THREADS, cuda or cuda:N. */
  @Override
  public String toString() {
    String name = kind == Kind.CPU ? "cpu" : "cuda";
    return index < 0 ? name : name + ":" + index;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Device && ((Device) o).kind == kind && ((Device) o).index() == index()
        && ((Device) o).threads() == threads();
  }

  @Override
  public int hashCode() {
    return (kind.hashCode() * 31 + index()) * 31 + threads();
  }
}
