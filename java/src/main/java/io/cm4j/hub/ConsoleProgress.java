package io.cm4j.hub;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * {@link Progress} as text: on a terminal, one bar redrawn in place with {@code \r} at most ten
 * times a second ({@code model.safetensors  45% 532 MB/1.18 GB 12.3 MB/s ETA 0:52}); elsewhere
 * (a log file, a pipe) no bar at all, only one line per downloaded file when it is done.
 * Sizes are in decimal units, like the Hub's web pages. Not thread-safe: one download at a time.
 */
public final class ConsoleProgress implements Progress {
  private static final long REDRAW_NANOS = 100_000_000L;
  private static final int NAME_WIDTH = 40;

  private final PrintStream out;
  private final boolean terminal;
  private final LongSupplier nanoClock;

  private String path;
  private long total;
  private long resumedFrom;
  private long have;
  private long startNanos;
  private long lastDrawNanos;
  private int lastWidth;

  /**
   * @param terminal draw a bar in place; otherwise print a line per finished file
   * @param nanoClock {@code System::nanoTime}, or a fake one in tests
   */
  public ConsoleProgress(PrintStream out, boolean terminal, LongSupplier nanoClock) {
    this.out = out;
    this.terminal = terminal;
    this.nanoClock = nanoClock;
  }

  /** On stderr, with a bar only when the process has a terminal. */
  public static ConsoleProgress forStderr() {
    return new ConsoleProgress(System.err, System.console() != null, System::nanoTime);
  }

  @Override
  public void started(String path, long total, long resumedFrom) {
    this.path = path;
    this.total = total;
    this.resumedFrom = resumedFrom;
    this.have = resumedFrom;
    this.startNanos = nanoClock.getAsLong();
    this.lastWidth = 0;
    if (terminal) {
      draw(startNanos);
    }
  }

  @Override
  public void advanced(long bytesOnDisk) {
    have = bytesOnDisk;
    resumedFrom = Math.min(resumedFrom, have); // a restart from 0 is not negative speed
    long now = nanoClock.getAsLong();
    if (terminal && now - lastDrawNanos >= REDRAW_NANOS) {
      draw(now);
    }
  }

  @Override
  public void finished(String path) {
    long now = nanoClock.getAsLong();
    if (terminal) {
      draw(now);
      out.println();
    } else {
      double seconds = Math.max(1e-9, (now - startNanos) / 1e9);
      out.println("downloaded " + path + ": " + bytes(total) + " in " + duration(seconds)
          + " (" + bytes((long) (fetched() / seconds)) + "/s"
          + (resumedFrom > 0 ? ", resumed at " + bytes(resumedFrom) : "") + ")");
    }
    out.flush();
  }

  @Override
  public void aborted(String path) {
    if (terminal) {
      out.println(); // keep the bar as it stopped; the error message goes below it
      out.flush();
    }
  }

  private long fetched() {
    return Math.max(0, have - resumedFrom);
  }

  private void draw(long now) {
    lastDrawNanos = now;
    double seconds = (now - startNanos) / 1e9;
    double rate = seconds > 0 ? fetched() / seconds : 0;
    String line = line(path, have, total, rate);
    StringBuilder s = new StringBuilder("\r").append(line);
    for (int i = line.length(); i < lastWidth; i++) {
      s.append(' '); // erase the end of a longer previous line
    }
    lastWidth = line.length();
    out.print(s);
    out.flush();
  }

  /** One bar: name, percent, bytes done/total, rate and time left. */
  static String line(String path, long have, long total, double bytesPerSecond) {
    String name = path.length() <= NAME_WIDTH ? path
        : "..." + path.substring(path.length() - NAME_WIDTH + 3);
    int percent = total > 0 ? (int) (100 * have / total) : 100;
    String eta = bytesPerSecond > 0 ? duration((total - have) / bytesPerSecond) : "--:--";
    return String.format(Locale.ROOT, "%s %3d%% %s/%s %s/s ETA %s", name, percent, bytes(have),
        bytes(total), bytes((long) bytesPerSecond), eta);
  }

  /** 999 B, 1.18 GB, 532 MB: three significant digits, decimal units. */
  static String bytes(long n) {
    if (n < 1000) {
      return n + " B";
    }
    String[] units = {"kB", "MB", "GB", "TB", "PB", "EB"};
    double v = n;
    int u = -1;
    while (v >= 999.5 && u < units.length - 1) {
      v /= 1000;
      u++;
    }
    String digits = v < 9.995 ? "%.2f" : v < 99.95 ? "%.1f" : "%.0f";
    return String.format(Locale.ROOT, digits + " %s", v, units[u]);
  }

  /** 0:52, 12:05, 1:02:03. */
  static String duration(double seconds) {
    long s = Math.round(seconds);
    if (s >= 3600) {
      return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }
    return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
  }
}
