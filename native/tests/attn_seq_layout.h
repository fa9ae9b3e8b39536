// Host-side moves between the backend's attention operands and the sequence data of
// cuDNN's multi-head attention (cudnnMultiHeadAttnForward), and a naive reference of what
// cuDNN computes on them. Header-only: test_cuda_cudnn_attn (GPU) uses them, and
// test_attn_seq_layout (CPU, runs everywhere) checks them against the CPU backend.
//
// cuDNN's heads are not ours: with the projections disabled (q/k/v/oProjSize = 0) each of
// its nHeads heads attends with the whole q/k/v vector and the output concatenates the
// nHeads (identical) results. So the comparison runs cuDNN with nHeads = 1 and makes
// every (image, head) pair a sequence of its own:
//   ours:  qkv [B, 3C, HW], q / k / v at channels 0 / C / 2C, head h at h*d..(h+1)*d;
//          out [B, C, HW]
//   cuDNN: q, k, v, o [N = B*heads, T = HW, d], sequence n = b*heads + h, time step t =
//          pixel, vector = the head's d channels, innermost. As a cuDNN seq data
//          descriptor: axes {BEAM, BATCH, TIME, VECT} (outermost first) with beam 1.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace cm4j_test {

struct SeqShape {
  int batch = 1, heads = 1, hw = 1, d = 1;
  int seqs() const { return batch * heads; }
  int channels() const { return heads * d; }
  size_t elems() const { return static_cast<size_t>(seqs()) * hw * d; }  // one of q/k/v/o
};

// Offset of (sequence n, time step t, vector element i) in cuDNN's buffer.
inline size_t seq_at(const SeqShape& s, int n, int t, int i) {
  return (static_cast<size_t>(n) * s.hw + t) * s.d + i;
}

// Offset of channel c, pixel t of image b in a channels-first [B, channels, HW] buffer.
inline size_t chw_at(const SeqShape& s, int channels, int b, int c, int t) {
  return (static_cast<size_t>(b) * channels + c) * s.hw + t;
}

// qkv [B, 3C, HW] -> q (which 0), k (1) or v (2) as [N, T, d].
inline std::vector<float> pack_qkv(const SeqShape& s, const float* qkv, int which) {
  std::vector<float> dst(s.elems());
  const int c = s.channels();
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h)
      for (int i = 0; i < s.d; ++i) {
        const float* src = qkv + chw_at(s, 3 * c, b, which * c + h * s.d + i, 0);  // [HW]
        for (int t = 0; t < s.hw; ++t) dst[seq_at(s, b * s.heads + h, t, i)] = src[t];
      }
  return dst;
}

// cuDNN's o [N, T, d] -> out [B, C, HW].
inline std::vector<float> unpack_out(const SeqShape& s, const std::vector<float>& o) {
  std::vector<float> out(s.elems());
  const int c = s.channels();
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h)
      for (int i = 0; i < s.d; ++i) {
        float* dst = out.data() + chw_at(s, c, b, h * s.d + i, 0);  // [HW]
        for (int t = 0; t < s.hw; ++t) dst[t] = o[seq_at(s, b * s.heads + h, t, i)];
      }
  return out;
}

// cuDNN's forward with nHeads = 1, no projections, biases, residuals or dropout, and the
// window [0, T) for every query: o[n, t] = sum_j softmax_j(scale * q[n, t].k[n, j]) v[n, j].
// In double; q, k, v, o are [N, T, d].
inline std::vector<float> seq_attention_reference(const SeqShape& s, const std::vector<float>& q,
                                                  const std::vector<float>& k,
                                                  const std::vector<float>& v, double scale) {
  std::vector<float> o(s.elems());
  std::vector<double> w(s.hw), acc(s.d);
  for (int n = 0; n < s.seqs(); ++n)
    for (int t = 0; t < s.hw; ++t) {
      double max = -INFINITY;
      for (int j = 0; j < s.hw; ++j) {
        double dot = 0;
        for (int i = 0; i < s.d; ++i) dot += double(q[seq_at(s, n, t, i)]) * k[seq_at(s, n, j, i)];
        w[j] = scale * dot;
        max = std::fmax(max, w[j]);
      }
      double sum = 0;
      for (int j = 0; j < s.hw; ++j) sum += (w[j] = std::exp(w[j] - max));
      for (int i = 0; i < s.d; ++i) acc[i] = 0;
      for (int j = 0; j < s.hw; ++j)
        for (int i = 0; i < s.d; ++i) acc[i] += w[j] * v[seq_at(s, n, j, i)];
      for (int i = 0; i < s.d; ++i) o[seq_at(s, n, t, i)] = static_cast<float>(acc[i] / sum);
    }
  return o;
}

}  // namespace cm4j_test
