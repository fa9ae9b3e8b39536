package io.cm4j.weights;

import java.nio.file.Path;
import java.util.List;

/** A {@link SafetensorsFile} seen as a {@link Checkpoint} (tensors must be F32, F16 or BF16). */
final class SafetensorsCheckpoint implements Checkpoint {
  private final SafetensorsFile file;

  private SafetensorsCheckpoint(SafetensorsFile file) {
    this.file = file;
  }

  static SafetensorsCheckpoint open(Path path) throws CheckpointException {
    SafetensorsFile f = SafetensorsFile.open(path);
    for (String name : f.names()) {
      DType t = f.get(name).dtype();
      if (t != DType.F32 && t != DType.F16 && t != DType.BF16) {
        f.close();
        throw new CheckpointException(path, "tensor '" + name + "' has dtype " + t
            + "; only F32, F16 and BF16 weights are supported");
      }
    }
    return new SafetensorsCheckpoint(f);
  }

  @Override
  public Path path() {
    return file.path();
  }

  @Override
  public String format() {
    return "safetensors";
  }

  @Override
  public List<String> names() {
    return file.names();
  }

  @Override
  public boolean contains(String name) {
    return file.contains(name);
  }

  @Override
  public TensorInfo info(String name) throws CheckpointException {
    TensorEntry t = file.get(name);
    return new TensorInfo(name, t.dtype(), t.shape());
  }

  @Override
  public TensorEntry get(String name) throws CheckpointException {
    return file.get(name);
  }

  @Override
  public void close() {
    file.close();
  }

  @Override
  public String toString() {
    return "SafetensorsCheckpoint[" + file.path() + "]";
  }
}
