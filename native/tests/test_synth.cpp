// synth-v1 against the check values of ../shared/golden/README.md.
#include <cmath>
#include <cstdio>

#include "synth.h"
#include "test_util.h"

using namespace cm4j_test;

int main() {
  uint64_t key = cm4j::fnv1a64("conv_in.weight");
  CHECK(key == 2082520131938120871ull, "fnv1a64(conv_in.weight) = %llu",
        static_cast<unsigned long long>(key));
  const double conv_in[] = {0.1669389009475708, -0.11213088035583496, 0.22824621200561523};
  const double norm1[] = {0.932727575302124, 0.5653797388076782, -0.8662737607955933};
  uint64_t norm_key = cm4j::fnv1a64("down_blocks.0.resnets.0.norm1.weight") ^ 1;
  for (int i = 0; i < 3; ++i) {
    double v = cm4j::synth_v1_variate(key ^ 1, i);
    CHECK(v == conv_in[i], "conv_in.weight v[%d] = %.17g", i, v);
    double w = cm4j::synth_v1_variate(norm_key, i);
    CHECK(w == norm1[i], "norm1.weight v[%d] = %.17g", i, w);
  }
  // Scaling: conv weights by 1/sqrt(fan_in), 1-D weights around 1, biases small.
  float conv[27], gamma[3], bias[3];
  cm4j::synth_v1_fill("conv_in.weight", {1, 3, 3, 3}, 1, conv);
  CHECK(std::fabs(conv[0] - static_cast<float>(conv_in[0] / std::sqrt(27.0))) == 0, "conv scale %g", conv[0]);
  cm4j::synth_v1_fill("down_blocks.0.resnets.0.norm1.weight", {3}, 1, gamma);
  CHECK(gamma[0] == static_cast<float>(1 + 0.1 * norm1[0]), "norm weight %g", gamma[0]);
  cm4j::synth_v1_fill("conv_in.bias", {3}, 1, bias);
  double v0 = cm4j::synth_v1_variate(cm4j::fnv1a64("conv_in.bias") ^ 1, 0);
  CHECK(bias[0] == static_cast<float>(0.05 * v0), "bias %g", bias[0]);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
