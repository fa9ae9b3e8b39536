package io.cm4j.weights;

/** Element types of checkpoint tensors, with their safetensors names and sizes in bytes. */
public enum DType {
  F64("F64", 8),
  F32("F32", 4),
  F16("F16", 2),
  BF16("BF16", 2),
  I64("I64", 8),
  I32("I32", 4),
  I16("I16", 2),
  I8("I8", 1),
  U8("U8", 1),
  BOOL("BOOL", 1);

  private final String safetensorsName;
  private final int size;

  DType(String safetensorsName, int size) {
    this.safetensorsName = safetensorsName;
    this.size = size;
  }

  /** The name in a safetensors header ("F32", "BF16", ...). */
  public String safetensorsName() {
    return safetensorsName;
  }

  /** Bytes per element. */
  public int size() {
    return size;
  }

  /** The type with this safetensors name, or null when there is none. */
  public static DType fromSafetensorsName(String name) {
    for (DType t : values()) {
      if (t.safetensorsName.equals(name)) {
        return t;
      }
    }
    return null;
  }
}
