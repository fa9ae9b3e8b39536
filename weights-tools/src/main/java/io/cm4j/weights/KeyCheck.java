package io.cm4j.weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint's names against a model's expected name-to-shape map: every missing, unexpected
 * and mis-shaped name, so that one message can list all of them.
 */
public record KeyCheck(List<String> missing, List<String> unexpected, List<String> misShaped) {

  public KeyCheck {
    missing = List.copyOf(missing);
    unexpected = List.copyOf(unexpected);
    misShaped = List.copyOf(misShaped);
  }

  static KeyCheck of(Checkpoint c, Map<String, long[]> expected) throws CheckpointException {
    List<String> missing = new ArrayList<>();
    List<String> unexpected = new ArrayList<>();
    List<String> misShaped = new ArrayList<>();
    for (String name : expected.keySet()) {
      if (!c.contains(name)) {
        missing.add(name);
      }
    }
    for (String name : c.names()) {
      long[] want = expected.get(name);
      if (want == null) {
        unexpected.add(name);
      } else {
        long[] have = c.info(name).shape();
        if (!Arrays.equals(want, have)) {
          misShaped.add(name + ": expected " + Arrays.toString(want) + ", found "
              + Arrays.toString(have));
        }
      }
    }
    Collections.sort(missing);
    Collections.sort(unexpected);
    return new KeyCheck(missing, unexpected, misShaped);
  }

  /** True when every expected name is present with its shape and nothing else is. */
  public boolean ok() {
    return missing.isEmpty() && unexpected.isEmpty() && misShaped.isEmpty();
  }

  /** "ok", or the problems, one per line, each list capped at {@code limit} lines. */
  public String describe(int limit) {
    if (ok()) {
      return "ok";
    }
    StringBuilder sb = new StringBuilder();
    section(sb, "missing", missing, limit);
    section(sb, "unexpected", unexpected, limit);
    section(sb, "mis-shaped", misShaped, limit);
    return sb.toString().trim();
  }

  private static void section(StringBuilder sb, String title, List<String> items, int limit) {
    if (items.isEmpty()) {
      return;
    }
    sb.append(items.size()).append(' ').append(title).append(":\n");
    for (int i = 0; i < items.size() && i < limit; i++) {
      sb.append("  ").append(items.get(i)).append('\n');
    }
    if (items.size() > limit) {
      sb.append("  ... and ").append(items.size() - limit).append(" more\n");
    }
  }

  @Override
  public String toString() {
    return describe(20);
  }
}
