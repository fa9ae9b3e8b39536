// compose_time_embedding: the time path as the backend's separate ops, in the order (and so
// with the numbers) the plan emitted them before time_embedding was one call.
#include <cstddef>

#include "backend.h"
#include "cm4j.h"

namespace cm4j {

Status compose_time_embedding(Backend* backend, const TimeEmbeddingParams& p,
                              const TimeEmbeddingArgs& a) {
  if (a.t == nullptr || a.emb == nullptr || a.workspace == nullptr || a.linear_1 == nullptr ||
      a.linear_2 == nullptr)
    return {CM4J_ERR_INVALID_ARGUMENT, "time_embedding: null t, emb, workspace or weight"};
  if (a.class_table != nullptr && a.class_labels == nullptr)
    return {CM4J_ERR_INVALID_ARGUMENT, "time_embedding: a class table without labels"};
  const size_t b = static_cast<size_t>(p.batch);
  float* sinusoid = a.workspace;          // [B, channels]
  float* hidden = sinusoid + b * p.channels;  // [B, dim]
  float* cls = hidden + b * p.dim;        // [B, dim]
  Status s = backend->timestep_embedding(a.t, sinusoid, p.batch, p.channels, p.flip_sin_to_cos,
                                         p.freq_shift);
  if (!s.ok()) return s;
  LinearArgs l1;
  l1.x = sinusoid;
  l1.weight = a.linear_1;
  l1.bias = a.bias_1;
  l1.y = hidden;
  s = backend->linear({p.batch, p.dim, p.channels, false, /*silu_output=*/true}, l1);
  if (!s.ok()) return s;
  if (a.class_table != nullptr) {
    s = backend->embedding_lookup(a.class_table, a.class_labels, cls, p.batch, p.dim);
    if (!s.ok()) return s;
  }
  LinearArgs l2;
  l2.x = hidden;
  l2.weight = a.linear_2;
  l2.bias = a.bias_2;
  l2.add = a.class_table != nullptr ? cls : nullptr;  // added after linear_2's bias
  l2.y = a.emb;
  return backend->linear({p.batch, p.dim, p.dim, false, false}, l2);
}

}  // namespace cm4j
