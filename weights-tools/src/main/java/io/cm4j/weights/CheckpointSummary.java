package io.cm4j.weights;

import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * What {@code weights inspect} prints about a checkpoint: its format, how many tensors, how many
 * of each dtype, total parameters and bytes (as handed out, after any conversion), and whether a
 * UNet config is known for it.
 */
public record CheckpointSummary(Path path, String format, int tensors,
    Map<DType, Integer> dtypes, long parameters, long bytes, boolean configKnown) {

  static CheckpointSummary of(Checkpoint c) throws CheckpointException {
    Map<DType, Integer> dtypes = new EnumMap<>(DType.class);
    long params = 0;
    long bytes = 0;
    for (String name : c.names()) {
      TensorInfo t = c.info(name);
      dtypes.merge(t.dtype(), 1, Integer::sum);
      params += t.numel();
      bytes += t.nbytes();
    }
    return new CheckpointSummary(c.path(), c.format(), c.names().size(),
        Collections.unmodifiableMap(dtypes), params, bytes, c.matchingConfig().isPresent());
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder();
    sb.append(path).append('\n');
    sb.append("  format:     ").append(format).append('\n');
    sb.append("  tensors:    ").append(tensors).append('\n');
    sb.append("  dtypes:     ");
    boolean first = true;
    for (Map.Entry<DType, Integer> e : dtypes.entrySet()) {
      sb.append(first ? "" : ", ").append(e.getKey()).append(" x").append(e.getValue());
      first = false;
    }
    sb.append('\n');
    sb.append("  parameters: ").append(parameters).append('\n');
    sb.append("  bytes:      ").append(bytes).append('\n');
    sb.append("  config:     ").append(configKnown ? "known" : "unknown");
    return sb.toString();
  }
}
