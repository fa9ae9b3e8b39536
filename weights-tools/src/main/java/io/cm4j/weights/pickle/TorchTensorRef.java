package io.cm4j.weights.pickle;

/**
 * What {@code torch._utils._rebuild_tensor_v2} describes: a view of a storage (whatever the
 * stream's persistent-id loader returned for it) at an element offset with sizes and strides in
 * elements. Nothing is read here; the torch reader checks the view against the storage record.
 */
public record TorchTensorRef(Object storage, long offset, long[] size, long[] stride) {
  public TorchTensorRef {
    size = size.clone();
    stride = stride.clone();
  }

  @Override
  public long[] size() {
    return size.clone();
  }

  @Override
  public long[] stride() {
    return stride.clone();
  }
}
