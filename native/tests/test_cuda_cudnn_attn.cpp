// The CUDA backend's attention against cuDNN's multi-head attention at the attention shapes
// of the real models (imagenet64, LSUN-256, lsun_mini, tiny; batch 1 and 2), plus a timing
// table (ours vs cuDNN, CUDA events, median of 10 runs): a reference next to test_cuda_ops
// (which compares with the CPU backend) that shares no code with us.
//
// cuDNN's function is the legacy cudnnMultiHeadAttnForward (libcudnn_adv; deprecated in
// cuDNN 9 but there). Per query q it computes
//   h_i = W_V,i V softmax(smScaler K^T W_K,i^T W_Q,i q),  out = W_O [h_0; ...; h_n-1]
// and with every projection disabled (q/k/v/oProjSize = 0, no biases), one head, no
// residuals and no dropout that is plain softmax attention. Our heads become cuDNN
// sequences (attn_seq_layout.h, checked on the CPU by test_attn_seq_layout), moved on the
// host outside the timed region. Settings: fp32 data and compute, smScaler = our scale
// (dim_head^-0.5, the same float), CUDNN_ATTN_QUERYMAP_ALL_TO_ONE (beam 1 everywhere),
// inference mode (no reserve space), every query's window [0, HW), CUDNN_FMA_MATH; should
// cuDNN refuse FMA math, CUDNN_DEFAULT_MATH, with TF32 off either way through
// NVIDIA_TF32_OVERRIDE=0 (set before cuDNN loads, unless the caller set it).
//
// Checked: relative L2 error ||ours - cudnn|| / ||cudnn|| <= 1e-5 with no NaN (outputs are
// poisoned with NaN before each checked run); inputs are fresh random numbers every run
// (the seed is printed; CM4J_TEST_SEED=<n> repeats a run). Reported only: the CPU
// backend against cuDNN (a third opinion when a check fails) and the times.
// CM4J_TEST_FILTER (comma-separated substrings of the case names) runs a subset.
// Exit 77 (skipped) when no CUDA device is usable, when cuDNN cannot be loaded, or when it
// has no multi-head attention functions (no libcudnn_adv); any other cuDNN failure (handle,
// descriptors, buffer query, forward) fails the test with cuDNN's message.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attn_seq_layout.h"
#include "backend.h"
#include "cm4j.h"
#include "cuda_test_util.h"
#include "test_util.h"
#ifdef CM4J_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cudnn_dl.h"
#endif

using namespace cm4j;
using namespace cm4j_test;  // Buf, g_rng, randn, SeqShape, pack_qkv, CudnnLib, time_ms

#ifdef CM4J_HAVE_CUDA
namespace {

// ---- the slice of the cuDNN multi-head attention API used here (cudnn_adv.h) ------------
typedef struct cudnnAttnStruct* cudnnAttnDescriptor_t;
typedef struct cudnnSeqDataStruct* cudnnSeqDataDescriptor_t;
typedef struct cudnnDropoutStruct* cudnnDropoutDescriptor_t;
// attnMode bits (#defines in cudnn_adv.h), ORed.
constexpr unsigned CUDNN_ATTN_QUERYMAP_ALL_TO_ONE = 0;
constexpr unsigned CUDNN_ATTN_DISABLE_PROJ_BIASES = 0;
// cudnnSeqDataAxis_t: dimA[] is indexed by these; axes[] lists them outermost first.
constexpr int CUDNN_SEQDATA_TIME_DIM = 0;
constexpr int CUDNN_SEQDATA_BATCH_DIM = 1;
constexpr int CUDNN_SEQDATA_BEAM_DIM = 2;
constexpr int CUDNN_SEQDATA_VECT_DIM = 3;
constexpr int CUDNN_SEQDATA_DIM_COUNT = 4;

struct CudnnMha : CudnnLib {
  cudnnStatus_t (*CreateAttnDescriptor)(cudnnAttnDescriptor_t*) = nullptr;
  cudnnStatus_t (*DestroyAttnDescriptor)(cudnnAttnDescriptor_t) = nullptr;
  cudnnStatus_t (*SetAttnDescriptor)(cudnnAttnDescriptor_t, unsigned attn_mode, int n_heads,
                                     double sm_scaler, int data_type, int compute_prec,
                                     int math_type, cudnnDropoutDescriptor_t attn_dropout,
                                     cudnnDropoutDescriptor_t post_dropout, int q_size,
                                     int k_size, int v_size, int q_proj_size, int k_proj_size,
                                     int v_proj_size, int o_proj_size, int qo_max_seq_length,
                                     int kv_max_seq_length, int max_batch_size,
                                     int max_beam_size) = nullptr;
  // reserve_bytes null: inference only (no backward will follow).
  cudnnStatus_t (*GetMultiHeadAttnBuffers)(cudnnHandle_t, cudnnAttnDescriptor_t,
                                           size_t* weight_bytes, size_t* workspace_bytes,
                                           size_t* reserve_bytes) = nullptr;
  cudnnStatus_t (*CreateSeqDataDescriptor)(cudnnSeqDataDescriptor_t*) = nullptr;
  cudnnStatus_t (*DestroySeqDataDescriptor)(cudnnSeqDataDescriptor_t) = nullptr;
  // axes: cudnnSeqDataAxis_t[nb_dims]; seq_lengths: host, one per (batch, beam) entry.
  cudnnStatus_t (*SetSeqDataDescriptor)(cudnnSeqDataDescriptor_t, int data_type, int nb_dims,
                                        const int* dim_a, const int* axes,
                                        size_t seq_length_array_size, const int* seq_lengths,
                                        void* padding_fill) = nullptr;
  // lo/hi_win_idx: host, one per query time step; dev_seq_lengths_*: device.
  cudnnStatus_t (*MultiHeadAttnForward)(
      cudnnHandle_t, cudnnAttnDescriptor_t, int curr_idx, const int* lo_win_idx,
      const int* hi_win_idx, const int* dev_seq_lengths_qo, const int* dev_seq_lengths_kv,
      cudnnSeqDataDescriptor_t q_desc, const void* queries, const void* residuals,
      cudnnSeqDataDescriptor_t k_desc, const void* keys, cudnnSeqDataDescriptor_t v_desc,
      const void* values, cudnnSeqDataDescriptor_t o_desc, void* out, size_t weight_bytes,
      const void* weights, size_t workspace_bytes, void* workspace, size_t reserve_bytes,
      void* reserve) = nullptr;
};

// Loads cuDNN and resolves the functions; false with the reason in *why.
bool load_cudnn(CudnnMha* c, std::string* why) {
  if (!open_cudnn(c, why)) return false;
  std::string missing;
  auto sym = [&](auto* fn, const char* name) { c->sym(fn, name, &missing); };
  sym(&c->CreateAttnDescriptor, "cudnnCreateAttnDescriptor");
  sym(&c->DestroyAttnDescriptor, "cudnnDestroyAttnDescriptor");
  sym(&c->SetAttnDescriptor, "cudnnSetAttnDescriptor");
  sym(&c->GetMultiHeadAttnBuffers, "cudnnGetMultiHeadAttnBuffers");
  sym(&c->CreateSeqDataDescriptor, "cudnnCreateSeqDataDescriptor");
  sym(&c->DestroySeqDataDescriptor, "cudnnDestroySeqDataDescriptor");
  sym(&c->SetSeqDataDescriptor, "cudnnSetSeqDataDescriptor");
  sym(&c->MultiHeadAttnForward, "cudnnMultiHeadAttnForward");
  if (!missing.empty()) {
    *why = "cuDNN " + std::to_string(c->GetVersion()) + " at " + c->path + " lacks " + missing +
           " (libcudnn_adv.so.9 not found?)";
    return false;
  }
  return true;
}

// int32 device array, freed with it; error() is empty when the upload worked.
class DevInts {
 public:
  explicit DevInts(const std::vector<int>& host) {
    cudaError_t e = cudaMalloc(&p_, host.size() * sizeof(int));
    if (e == cudaSuccess)
      e = cudaMemcpy(p_, host.data(), host.size() * sizeof(int), cudaMemcpyHostToDevice);
    // A pageable upload may still be in flight when cudaMemcpy returns, and cuDNN reads
    // the array on the backend's stream, not the default one.
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) error_ = cudaGetErrorString(e);
  }
  DevInts(const DevInts&) = delete;
  DevInts& operator=(const DevInts&) = delete;
  ~DevInts() {
    if (p_) cudaFree(p_);
  }
  const int* p() const { return p_; }
  const std::string& error() const { return error_; }

 private:
  int* p_ = nullptr;
  std::string error_;
};

// One cuDNN attention problem over s's sequences: descriptors, windows, sequence lengths
// and workspace. error() is empty when it is ready; it names the first failing call.
class CudnnAttention {
 public:
  CudnnAttention(const CudnnMha& dnn, cudnnHandle_t handle, Backend* gpu, const SeqShape& s,
                 double sm_scaler, int math)
      : dnn_(dnn), handle_(handle), lo_(s.hw, 0), hi_(s.hw, s.hw),
        qo_lengths_(std::vector<int>(s.seqs(), s.hw)),
        kv_lengths_(std::vector<int>(s.seqs(), s.hw)) {
    ck(dnn.CreateAttnDescriptor(&attn_), "cudnnCreateAttnDescriptor");
    for (cudnnSeqDataDescriptor_t* d : {&q_, &k_, &v_, &o_})
      ck(dnn.CreateSeqDataDescriptor(d), "cudnnCreateSeqDataDescriptor");
    if (!error_.empty()) return;
    // One head; q, k, v of the head's d elements, no projections; sequences of HW steps;
    // N = B*heads sequences of beam 1.
    const unsigned mode = CUDNN_ATTN_QUERYMAP_ALL_TO_ONE | CUDNN_ATTN_DISABLE_PROJ_BIASES;
    ck(dnn.SetAttnDescriptor(attn_, mode, /*n_heads=*/1, sm_scaler, CUDNN_DATA_FLOAT,
                             CUDNN_DATA_FLOAT, math, /*attn_dropout=*/nullptr,
                             /*post_dropout=*/nullptr, s.d, s.d, s.d,
                             /*q/k/v/o_proj_size=*/0, 0, 0, 0, s.hw, s.hw, s.seqs(),
                             /*max_beam_size=*/1),
       "cudnnSetAttnDescriptor");
    // [N, T, d] with the vector innermost (attn_seq_layout.h). The output vector is
    // nHeads * vSize = d long, so all four descriptors are the same.
    int dims[CUDNN_SEQDATA_DIM_COUNT];
    dims[CUDNN_SEQDATA_TIME_DIM] = s.hw;
    dims[CUDNN_SEQDATA_BATCH_DIM] = s.seqs();
    dims[CUDNN_SEQDATA_BEAM_DIM] = 1;
    dims[CUDNN_SEQDATA_VECT_DIM] = s.d;
    const int axes[CUDNN_SEQDATA_DIM_COUNT] = {CUDNN_SEQDATA_BEAM_DIM, CUDNN_SEQDATA_BATCH_DIM,
                                               CUDNN_SEQDATA_TIME_DIM, CUDNN_SEQDATA_VECT_DIM};
    const std::vector<int> lengths(s.seqs(), s.hw);  // batch * beam entries
    for (cudnnSeqDataDescriptor_t d : {q_, k_, v_, o_})
      ck(dnn.SetSeqDataDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_SEQDATA_DIM_COUNT, dims, axes,
                                  lengths.size(), lengths.data(), /*padding_fill=*/nullptr),
         "cudnnSetSeqDataDescriptor");
    if (!error_.empty()) return;
    size_t weight_bytes = 0;
    ck(dnn.GetMultiHeadAttnBuffers(handle, attn_, &weight_bytes, &workspace_bytes_,
                                   /*reserve_bytes=*/nullptr),
       "cudnnGetMultiHeadAttnBuffers");
    if (!error_.empty()) return;
    if (weight_bytes != 0) {  // then some projection is not disabled after all
      error_ = "cuDNN wants " + std::to_string(weight_bytes) +
               " weight bytes with every projection disabled";
      return;
    }
    if (workspace_bytes_ > (size_t{1} << 30)) {
      error_ = "cuDNN wants a workspace of " + std::to_string(workspace_bytes_ >> 20) + " MiB";
      return;
    }
    workspace_ = std::make_unique<Buf>(gpu, workspace_bytes_ / sizeof(float) + 1);
    if (!workspace_->p) error_ = "cannot allocate the workspace";
    if (error_.empty() && !qo_lengths_.error().empty())
      error_ = "sequence lengths upload: " + qo_lengths_.error();
    if (error_.empty() && !kv_lengths_.error().empty())
      error_ = "sequence lengths upload: " + kv_lengths_.error();
  }
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;
  ~CudnnAttention() {
    for (cudnnSeqDataDescriptor_t d : {q_, k_, v_, o_})
      if (d) dnn_.DestroySeqDataDescriptor(d);
    if (attn_) dnn_.DestroyAttnDescriptor(attn_);
  }

  const std::string& error() const { return error_; }

  // Enqueues o = attention(q, k, v), all [N, T, d] on the device; false with error().
  bool forward(const float* q, const float* k, const float* v, float* o) {
    if (!error_.empty()) return false;
    ck(dnn_.MultiHeadAttnForward(handle_, attn_, /*curr_idx=*/-1, lo_.data(), hi_.data(),
                                 qo_lengths_.p(), kv_lengths_.p(), q_, q, /*residuals=*/nullptr,
                                 k_, k, v_, v, o_, o, /*weight_bytes=*/0, /*weights=*/nullptr,
                                 workspace_bytes_, workspace_->p, /*reserve_bytes=*/0,
                                 /*reserve=*/nullptr),
       "cudnnMultiHeadAttnForward");
    return error_.empty();
  }

 private:
  void ck(cudnnStatus_t st, const char* what) {
    if (st != CUDNN_STATUS_SUCCESS && error_.empty())
      error_ = std::string(what) + ": " + dnn_.err(st);
  }

  const CudnnMha& dnn_;
  cudnnHandle_t handle_;
  cudnnAttnDescriptor_t attn_ = nullptr;
  cudnnSeqDataDescriptor_t q_ = nullptr, k_ = nullptr, v_ = nullptr, o_ = nullptr;
  std::vector<int> lo_, hi_;  // window [lo, hi) of keys per query step
  DevInts qo_lengths_, kv_lengths_;
  size_t workspace_bytes_ = 0;
  std::unique_ptr<Buf> workspace_;
  std::string error_;
};

constexpr double kBound = 1e-5;
constexpr int kReps = 10;

// CM4J_TEST_FILTER is a comma-separated list of substrings; a case runs when its name
// contains any of them.
bool selected(const std::string& name) {
  const char* filter = std::getenv("CM4J_TEST_FILTER");
  if (!filter || !*filter) return true;
  std::string list = std::string(filter) + ",";
  for (size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1) {
    std::string part = list.substr(at, comma - at);
    if (!part.empty() && name.find(part) != std::string::npos) return true;
  }
  return false;
}

struct Totals {
  int cases = 0;
  double worst = 0;  // rel L2, ours vs cuDNN; INFINITY once a case has NaN or no result
  double ours_ms = 0, cudnn_ms = 0;
};

struct Case {
  const char* model;
  const char* where;  // resolution (and the mid block when it has the same shape)
  int channels, hw, dim_head;
};

double rel_or_inf(const std::vector<float>& got, const std::vector<float>& ref, size_t* nan) {
  *nan = 0;
  if (got.size() != ref.size() || ref.empty()) return INFINITY;
  for (float v : got) *nan += std::isfinite(v) ? 0 : 1;
  for (float v : ref) *nan += std::isfinite(v) ? 0 : 1;
  return *nan ? INFINITY : rel_l2(got.data(), ref.data(), ref.size());
}

void run_case(Backend* gpu, Backend* cpu, const CudnnMha& dnn, cudnnHandle_t handle,
              const Case& k, int batch, Totals* totals) {
  char shape[160];
  std::snprintf(shape, sizeof shape, "%s %s b%d c%d hw%d dh%d", k.model, k.where, batch,
                k.channels, k.hw, k.dim_head);
  if (!selected(shape)) return;
  ++totals->cases;
  const cudaStream_t stream = cuda_backend_stream(gpu);
  const SeqShape s{batch, k.channels / k.dim_head, k.hw, k.dim_head};
  AttentionParams p;
  p.batch = batch;
  p.channels = k.channels;
  p.hw = k.hw;
  p.heads = s.heads;
  p.dim_head = k.dim_head;
  p.scale = 1.0f / std::sqrt(static_cast<float>(k.dim_head));
  // Scores of a few units: softmax neither uniform nor one-hot (as test_cuda_ops).
  const auto qkv = randn(static_cast<size_t>(batch) * 3 * k.channels * k.hw, 1.5f);

  // Ours, and the CPU backend.
  Buf bq(gpu, qkv), ours(gpu, s.elems());
  AttentionArgs a;
  a.qkv = bq.p;
  a.out = ours.p;
  ours.poison();
  Status st = gpu->attention(p, a);
  if (st.ok()) st = gpu->synchronize();
  const std::vector<float> got = ours.get();
  double ours_ms = -1;
  if (st.ok()) ours_ms = time_ms(stream, kReps, [&] { return gpu->attention(p, a).ok(); });
  CHECK(st.ok(), "%s: our attention: %s", shape, st.message.c_str());
  Buf cq(cpu, qkv), cout(cpu, s.elems());
  cout.poison();
  AttentionArgs ca;
  ca.qkv = cq.p;
  ca.out = cout.p;
  Status cst = cpu->attention(p, ca);
  const std::vector<float> cpu_got = cout.get();
  CHECK(cst.ok(), "%s: CPU attention: %s", shape, cst.message.c_str());

  // cuDNN on the packed sequences: FMA math, else the default math.
  Buf dq(gpu, pack_qkv(s, qkv.data(), 0)), dk(gpu, pack_qkv(s, qkv.data(), 1)),
      dv(gpu, pack_qkv(s, qkv.data(), 2)), dout(gpu, s.elems());
  std::unique_ptr<CudnnAttention> mha;
  std::string errors;
  const char* math_name = "none";
  for (int math : {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH}) {
    mha = std::make_unique<CudnnAttention>(dnn, handle, gpu, s, static_cast<double>(p.scale),
                                           math);
    dout.poison();
    bool ok = mha->forward(dq.p, dk.p, dv.p, dout.p);
    std::string error = mha->error();
    if (ok) {
      cudaError_t e = cudaStreamSynchronize(stream);
      ok = e == cudaSuccess;
      if (!ok) error = std::string("cudnnMultiHeadAttnForward ran: ") + cudaGetErrorString(e);
    }
    if (ok) {
      math_name = math == CUDNN_FMA_MATH ? "fma" : "default";
      break;
    }
    errors += std::string(errors.empty() ? "" : "; ") +
              (math == CUDNN_FMA_MATH ? "FMA math: " : "default math: ") + error;
    mha.reset();
  }
  CHECK(mha != nullptr, "%s: cuDNN failed: %s", shape, errors.c_str());
  std::vector<float> want;
  double cudnn_ms = -1;
  if (mha) {
    want = unpack_out(s, dout.get());
    cudnn_ms = time_ms(stream, kReps, [&] { return mha->forward(dq.p, dk.p, dv.p, dout.p); });
  }

  size_t nan = 0, cpu_nan = 0;
  const double rel = rel_or_inf(got, want, &nan);
  const double cpu_rel = rel_or_inf(cpu_got, want, &cpu_nan);
  if (mha) {
    CHECK(nan == 0, "%s: %zu NaN/Inf in our output or cuDNN's", shape, nan);
    CHECK(rel <= kBound, "%s: rel L2 %.3e vs cuDNN > %.0e (CPU backend vs cuDNN: %.3e)", shape,
          rel, kBound, cpu_rel);
  }
  const bool ok = st.ok() && mha && nan == 0 && rel <= kBound;
  std::printf("| %-42s | %5d | %9.2e | %9.2e | %8s | %8s | %-7s | %-4s |\n", shape, s.heads, rel,
              cpu_rel, fmt_ms(ours_ms).c_str(), fmt_ms(cudnn_ms).c_str(), math_name,
              ok ? "ok" : "FAIL");
  if (!errors.empty()) std::printf("    cuDNN %s\n", errors.c_str());
  totals->worst = std::fmax(totals->worst, rel);  // fmax drops NaN; rel is never NaN
  if (ours_ms > 0) totals->ours_ms += ours_ms;
  if (cudnn_ms > 0) totals->cudnn_ms += cudnn_ms;
}

}  // namespace

int main() {
  // Before anything loads cuBLAS or cuDNN: no TF32 in either (a caller's setting wins).
  setenv("NVIDIA_TF32_OVERRIDE", "0", 0);
  std::string why;
  if (cuda_device_count(&why) == 0) {
    std::printf("test_cuda_cudnn_attn: skipped: no CUDA device: %s\n", why.c_str());
    return 77;
  }
  std::string e;
  auto gpu = make_cuda_backend(0, CM4J_F32, &e);  // kernels: $CM4J_CUDA_KERNELS, else default
  if (!gpu) {
    std::printf("test_cuda_cudnn_attn: FAIL: cannot create the CUDA backend: %s\n", e.c_str());
    return 1;
  }
  auto cpu = make_cpu_backend(0, CM4J_F32);
  if (!cpu) {
    std::printf("test_cuda_cudnn_attn: FAIL: cannot create the CPU backend\n");
    return 1;
  }
  CudnnMha dnn;
  if (!load_cudnn(&dnn, &why)) {
    std::printf("test_cuda_cudnn_attn: skipped: %s\n", why.c_str());
    return 77;
  }
  cudnnHandle_t handle = nullptr;
  cudnnStatus_t st = dnn.Create(&handle);
  if (st != CUDNN_STATUS_SUCCESS) {
    std::printf("test_cuda_cudnn_attn: FAIL: cuDNN %zu from %s: cudnnCreate: %s\n",
                dnn.GetVersion(), dnn.path.c_str(), dnn.err(st).c_str());
    return 1;
  }
  st = dnn.SetStream(handle, cuda_backend_stream(gpu.get()));
  if (st != CUDNN_STATUS_SUCCESS) {
    std::printf("test_cuda_cudnn_attn: FAIL: cudnnSetStream: %s\n", dnn.err(st).c_str());
    dnn.Destroy(handle);
    return 1;
  }
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("CM4J_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  g_rng.seed(seed);
  const char* kernels = std::getenv("CM4J_CUDA_KERNELS");
  std::printf("test_cuda_cudnn_attn: cuDNN %zu from %s; cudnnMultiHeadAttnForward, fp32, "
              "NVIDIA_TF32_OVERRIDE=%s; ours: %s kernels\n",
              dnn.GetVersion(), dnn.path.c_str(), std::getenv("NVIDIA_TF32_OVERRIDE"),
              kernels && *kernels ? kernels : "default");
  std::printf("test_cuda_cudnn_attn: seed %llu (CM4J_TEST_SEED=%llu repeats this run); times: "
              "median of %d, ms, cuDNN's without the host transposes\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed), kReps);
  std::printf("| %-42s | %5s | %9s | %9s | %8s | %8s | %-7s | %-4s |\n", "case", "heads",
              "rel L2", "cpu rel", "ours ms", "cuDNN ms", "math", "ok");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(44, '-').c_str(),
              std::string(7, '-').c_str(), std::string(11, '-').c_str(),
              std::string(11, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(9, '-').c_str(),
              std::string(6, '-').c_str());

  // Every attention shape of the shipped configs (heads = channels / attention_head_dim):
  //   imagenet64 (64x64, channels 192/384/576/768, head dim 64): down/up at 32x32, 16x16,
  //     8x8; the mid block at 8x8.
  //   LSUN-256 (256x256, 256/256/512/512/1024/1024, head dim 64): 32x32, 16x16, 8x8 + mid.
  //   lsun_mini (its structure at 64x64, 32/32/64/64/128/128): 8x8, 4x4, 2x2 + mid.
  //   tiny (32x32, 32/64, head dim 8): 16x16 + mid.
  //                     model         where          c     hw    dh
  const Case cases[] = {{"imagenet64", "32x32",       384,  1024, 64},
                        {"imagenet64", "16x16",       576,  256,  64},
                        {"imagenet64", "8x8+mid",     768,  64,   64},
                        {"lsun256",    "32x32",       512,  1024, 64},
                        {"lsun256",    "16x16",       1024, 256,  64},
                        {"lsun256",    "8x8+mid",     1024, 64,   64},
                        {"lsun_mini",  "8x8",         64,   64,   64},
                        {"lsun_mini",  "4x4",         128,  16,   64},
                        {"lsun_mini",  "2x2+mid",     128,  4,    64},
                        {"tiny",       "16x16+mid",   64,   256,  8}};
  Totals totals;
  for (const Case& k : cases)
    for (int batch : {1, 2}) run_case(gpu.get(), cpu.get(), dnn, handle, k, batch, &totals);

  dnn.Destroy(handle);
  std::printf("test_cuda_cudnn_attn: %d case(s), worst rel L2 vs cuDNN %.1e (bound %.0e); "
              "ms ours %.2f vs cuDNN %.2f; %d failed check(s) (seed %llu)\n",
              totals.cases, totals.worst, kBound, totals.ours_ms, totals.cudnn_ms,
              cm4j_test::failures, static_cast<unsigned long long>(seed));
  return cm4j_test::failures ? 1 : 0;
}

#else  // no CUDA backend in this build

int main() {
  std::printf("test_cuda_cudnn_attn: skipped: built without the CUDA backend\n");
  return 77;
}

#endif
