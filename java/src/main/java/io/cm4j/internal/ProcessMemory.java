package io.cm4j.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's memory as Linux reports it in {@code /proc/self/status}. */
public final class ProcessMemory {
  private ProcessMemory() {}

  /** Resident memory now (VmRSS), in bytes; -1 where there is no /proc (not Linux). */
  public static long residentBytes() {
    return statusBytes("VmRSS:");
  }

  /** The peak of resident memory so far (VmHWM), in bytes; -1 where there is no /proc. */
  public static long peakResidentBytes() {
    return statusBytes("VmHWM:");
  }

  private static long statusBytes(String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith(field)) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024; // "VmRSS:  1234 kB"
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux
    }
    return -1;
  }
}
