// A CPU stand-in for the slice of cuDNN's legacy multi-head attention API that
// test_cuda_cudnn_attn calls, built as libcudnn.so.9 for runs under the CUDA emulator
// (kernels/dev/emu), where device pointers are host memory: it checks the test's cuDNN
// plumbing without a GPU (run_cudnn_attn.sh). Written from cuDNN's documented semantics,
// not from the test's layout helpers: data offsets follow each descriptor's axes order;
// nHeads heads each attend with the whole q/k/v vector and the output concatenates them;
// per-query windows [lo, hi) and per-sequence lengths apply. It rejects what the docs rule
// out (VECT not innermost, length array sizes, K/V beam > 1 with ALL_TO_ONE, buffer sizes,
// device lengths that differ from the descriptors', ...), printing why on stderr.
// Unsupported here: projections, currIdx >= 0, training (reserve space), dropout.
// MOCK_REJECT_FMA=1 refuses CUDNN_FMA_MATH; MOCK_FAIL_FORWARD=1 fails every forward;
// built with -DMOCK_CORE_ONLY it has no attention functions at all.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

enum Status { kOk = 0, kBadParam = 3, kNotSupported = 9 };
enum Axis { kTime = 0, kBatch = 1, kBeam = 2, kVect = 3 };

struct Attn {
  unsigned mode = 0;
  int heads = 0;
  double scaler = 0;
  int q_size = 0, k_size = 0, v_size = 0, q_proj = 0, k_proj = 0, v_proj = 0, o_proj = 0;
  int qo_max = 0, kv_max = 0, max_batch = 0, max_beam = 0;
  bool set = false;
};

struct Seq {
  int dims[4] = {0, 0, 0, 0};  // indexed by Axis
  int axes[4] = {0, 0, 0, 0};  // outermost first
  std::vector<int> lengths;    // per (batch, beam), batch-major
  bool set = false;

  // Element offset of (time t, batch b, beam m, vector element e).
  size_t at(int t, int b, int m, int e) const {
    const int idx[4] = {t, b, m, e};
    size_t o = 0;
    for (int i = 0; i < 4; ++i) o = o * dims[axes[i]] + idx[axes[i]];
    return o;
  }
};

#ifndef MOCK_CORE_ONLY
bool bad(bool cond, const char* why) {
  if (cond) std::fprintf(stderr, "mock cuDNN: %s\n", why);
  return cond;
}

size_t weight_bytes(const Attn& a) {
  size_t w = size_t(a.q_proj) * a.q_size + size_t(a.k_proj) * a.k_size +
             size_t(a.v_proj) * a.v_size;  // per head
  w *= a.heads;
  if (a.o_proj) w += size_t(a.o_proj) * a.heads * (a.v_proj ? a.v_proj : a.v_size);
  return w * sizeof(float);
}

size_t workspace_bytes(const Attn& a) {
  return size_t(a.max_batch) * a.max_beam * a.heads * a.qo_max * a.kv_max * sizeof(float);
}
#endif

}  // namespace

extern "C" {

size_t cudnnGetVersion() { return 91900; }

const char* cudnnGetErrorString(int s) {
  switch (s) {
    case kOk: return "CUDNN_STATUS_SUCCESS";
    case kBadParam: return "CUDNN_STATUS_BAD_PARAM";
    case kNotSupported: return "CUDNN_STATUS_NOT_SUPPORTED";
    default: return "CUDNN_STATUS_(mock: other)";
  }
}

int cudnnCreate(void** handle) {
  *handle = new int(1);
  return kOk;
}
int cudnnDestroy(void* handle) {
  delete static_cast<int*>(handle);
  return kOk;
}
int cudnnSetStream(void*, void*) { return kOk; }

#ifndef MOCK_CORE_ONLY  // else a cuDNN without libcudnn_adv's attention functions

int cudnnCreateAttnDescriptor(Attn** a) {
  *a = new Attn();
  return kOk;
}
int cudnnDestroyAttnDescriptor(Attn* a) {
  delete a;
  return kOk;
}

int cudnnSetAttnDescriptor(Attn* a, unsigned mode, int heads, double scaler, int data_type,
                           int compute_prec, int math, void* attn_dropout, void* post_dropout,
                           int q_size, int k_size, int v_size, int q_proj, int k_proj, int v_proj,
                           int o_proj, int qo_max, int kv_max, int max_batch, int max_beam) {
  if (math == 3 && std::getenv("MOCK_REJECT_FMA")) return kBadParam;
  if (bad(mode & ~3u, "unknown attnMode bits") || bad(heads <= 0, "nHeads <= 0") ||
      bad(scaler < 0, "negative smScaler") ||
      bad(data_type != 0 || compute_prec != 0, "mock: fp32 data and compute only") ||
      bad(math < 0 || math > 3, "unknown mathType") ||
      bad(attn_dropout || post_dropout, "mock: no dropout") ||
      bad(q_size <= 0 || k_size <= 0 || v_size <= 0, "q/k/vSize <= 0") ||
      bad(q_proj < 0 || k_proj < 0 || v_proj < 0 || o_proj < 0, "negative projection size") ||
      bad((q_proj ? q_proj : q_size) != (k_proj ? k_proj : k_size),
          "q and k lengths after projection differ") ||
      bad(qo_max <= 0 || kv_max <= 0 || max_batch <= 0 || max_beam <= 0, "maxima <= 0"))
    return kBadParam;
  *a = Attn{mode, heads, scaler, q_size, k_size, v_size, q_proj, k_proj, v_proj, o_proj,
            qo_max, kv_max, max_batch, max_beam, true};
  return kOk;
}

int cudnnGetMultiHeadAttnBuffers(void* handle, Attn* a, size_t* weights, size_t* workspace,
                                 size_t* reserve) {
  if (bad(!handle || !a || !a->set || !weights || !workspace, "buffer query arguments"))
    return kBadParam;
  *weights = weight_bytes(*a);
  *workspace = workspace_bytes(*a);
  if (reserve) *reserve = size_t{1} << 20;  // training mode
  return kOk;
}

int cudnnCreateSeqDataDescriptor(Seq** s) {
  *s = new Seq();
  return kOk;
}
int cudnnDestroySeqDataDescriptor(Seq* s) {
  delete s;
  return kOk;
}

int cudnnSetSeqDataDescriptor(Seq* s, int data_type, int nb_dims, const int* dims,
                              const int* axes, size_t lengths_size, const int* lengths,
                              void* padding_fill) {
  if (bad(data_type != 0, "mock: fp32 only") || bad(nb_dims != 4, "nbDims != 4") ||
      bad(padding_fill != nullptr, "mock: no padding fill"))
    return kBadParam;
  int seen = 0;
  for (int i = 0; i < 4; ++i) {
    if (bad(axes[i] < 0 || axes[i] > 3 || dims[i] <= 0, "bad axis or dimension")) return kBadParam;
    seen |= 1 << axes[i];
  }
  if (bad(seen != 15, "axes not a permutation") || bad(axes[3] != kVect, "VECT not innermost") ||
      bad(lengths_size != size_t(dims[kBatch]) * dims[kBeam], "length array size != batch*beam"))
    return kBadParam;
  for (size_t i = 0; i < lengths_size; ++i)
    if (bad(lengths[i] < 0 || lengths[i] > dims[kTime], "sequence length out of range"))
      return kBadParam;
  s->lengths.assign(lengths, lengths + lengths_size);
  std::memcpy(s->dims, dims, sizeof s->dims);
  std::memcpy(s->axes, axes, sizeof s->axes);
  s->set = true;
  return kOk;
}

int cudnnMultiHeadAttnForward(void* handle, Attn* a, int curr_idx, const int* lo, const int* hi,
                              const int* dev_lengths_qo, const int* dev_lengths_kv, Seq* qd,
                              const void* queries, const void* residuals, Seq* kd,
                              const void* keys, Seq* vd, const void* values, Seq* od, void* out,
                              size_t weight_size, const void* weights, size_t workspace_size,
                              void* workspace, size_t reserve_size, void* reserve) {
  if (std::getenv("MOCK_FAIL_FORWARD")) return kNotSupported;
  if (bad(!handle || !a || !a->set, "attention descriptor not set") ||
      bad(!qd->set || !kd->set || !vd->set || !od->set, "seq data descriptor not set") ||
      bad(curr_idx != -1, "mock: currIdx -1 only") ||
      bad(a->q_proj || a->k_proj || a->v_proj || a->o_proj, "mock: no projections") ||
      bad(weight_size != weight_bytes(*a) || (weight_size && !weights), "weight buffer") ||
      bad(reserve_size || reserve, "mock: inference only") ||
      bad(workspace_size < workspace_bytes(*a) || (workspace_size && !workspace), "workspace"))
    return kBadParam;
  const int batch = qd->dims[kBatch], beam = qd->dims[kBeam];
  const int t_q = qd->dims[kTime], t_kv = kd->dims[kTime];
  const int o_size = a->heads * a->v_size;
  const bool one_to_one = a->mode & 1;
  if (bad(qd->dims[kVect] != a->q_size || kd->dims[kVect] != a->k_size ||
              vd->dims[kVect] != a->v_size || od->dims[kVect] != o_size,
          "vector lengths") ||
      bad(kd->dims[kBatch] != batch || vd->dims[kBatch] != batch || od->dims[kBatch] != batch,
          "batch sizes differ") ||
      bad(od->dims[kBeam] != beam || od->dims[kTime] != t_q, "o and q shapes differ") ||
      bad(vd->dims[kTime] != t_kv || vd->dims[kBeam] != kd->dims[kBeam], "k and v shapes differ") ||
      bad(!one_to_one && kd->dims[kBeam] != 1, "ALL_TO_ONE needs K/V beam 1") ||
      bad(one_to_one && kd->dims[kBeam] != beam, "ONE_TO_ONE needs K/V beam == Q beam") ||
      bad(t_q > a->qo_max || t_kv > a->kv_max || batch > a->max_batch || beam > a->max_beam,
          "above the descriptor's maxima") ||
      bad(residuals && a->q_size != o_size, "residuals need qSize == output length") ||
      bad(!lo || !hi || !dev_lengths_qo || !dev_lengths_kv, "null window or length array"))
    return kBadParam;
  for (int t = 0; t < a->qo_max; ++t)
    if (bad(lo[t] < 0 || hi[t] <= lo[t], "empty or negative window")) return kBadParam;
  for (int i = 0; i < batch * beam; ++i)
    if (bad(dev_lengths_qo[i] != qd->lengths[i] || dev_lengths_qo[i] != od->lengths[i],
            "device Q/O lengths differ from the descriptors'"))
      return kBadParam;
  for (int i = 0; i < batch * kd->dims[kBeam]; ++i)
    if (bad(dev_lengths_kv[i] != kd->lengths[i] || dev_lengths_kv[i] != vd->lengths[i],
            "device K/V lengths differ from the descriptors'"))
      return kBadParam;

  const float* q = static_cast<const float*>(queries);
  const float* k = static_cast<const float*>(keys);
  const float* v = static_cast<const float*>(values);
  const float* r = static_cast<const float*>(residuals);
  float* o = static_cast<float*>(out);
  std::vector<double> p(t_kv);
  for (int b = 0; b < batch; ++b)
    for (int m = 0; m < beam; ++m) {
      const int km = one_to_one ? m : 0;
      const int kv_len = kd->lengths[b * kd->dims[kBeam] + km];
      for (int t = 0; t < qd->lengths[b * beam + m]; ++t)
        for (int h = 0; h < a->heads; ++h) {  // no projections: every head sees all of q
          const int j0 = lo[t], j1 = std::min(hi[t], kv_len);
          double max = -INFINITY, sum = 0;
          for (int j = j0; j < j1; ++j) {
            double dot = 0;
            for (int e = 0; e < a->q_size; ++e)
              dot += double(q[qd->at(t, b, m, e)]) * k[kd->at(j, b, km, e)];
            p[j] = a->scaler * dot;
            max = std::fmax(max, p[j]);
          }
          for (int j = j0; j < j1; ++j) sum += (p[j] = std::exp(p[j] - max));
          for (int e = 0; e < a->v_size; ++e) {
            double acc = 0;
            for (int j = j0; j < j1; ++j) acc += p[j] * v[vd->at(j, b, km, e)];
            const int oe = h * a->v_size + e;
            float value = static_cast<float>(acc / sum);
            if (r) value += r[qd->at(t, b, m, oe)];
            o[od->at(t, b, m, oe)] = value;
          }
        }
    }
  return kOk;
}

#endif  // MOCK_CORE_ONLY

}  // extern "C"
