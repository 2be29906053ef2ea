// How the prompt GEMM's speed per row depends on the rows of one call, on one thread: the
// shape of a SigLIP MLP product (768 → 3072, BF16 weights) over one 512 px tile's 1,024
// patches, four tiles' and thirteen tiles' (a 1024×768 picture). Prints one JSON object.
//
//   build/release/iris-gemm-rows [repeats (default 3)]
//
// Measured to decide whether the tiles of one image should share their products (they do
// not: see docs/performance.md, "Tiles of one image, one product each").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/tensor/dtype.h"

int main(int argc, char** argv) {
  using namespace iris;
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const size_t k = 768, n = 3072;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<uint16_t> w(n * k);
  for (auto& v : w) v = tensor::F32ToBf16(normal(rng) * 0.05f);
  std::string rows_json;
  for (const size_t rows : {size_t{1024}, size_t{4096}, size_t{13312}}) {
    std::vector<float> x(rows * k), out(rows * n);
    for (auto& v : x) v = normal(rng);
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      kernels::MatMulRows(x.data(), k, rows, w.data(), tensor::DType::kBF16, k, 0, n, out.data(),
                          n);
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s{\"rows\": %zu, \"us_per_row\": %.2f, \"gmac_per_s\": %.1f}",
                  rows_json.empty() ? "" : ", ", rows, best / static_cast<double>(rows) * 1e6,
                  static_cast<double>(rows * n * k) / best / 1e9);
    rows_json += buf;
  }
  std::printf(
      "{\"k\": %zu, \"n\": %zu, \"weights\": \"bf16\", \"threads\": 1, \"simd_target\": \"%s\", "
      "\"best_of\": %d, \"calls\": [%s]}\n",
      k, n, kernels::ActiveTarget().c_str(), repeats, rows_json.c_str());
  return 0;
}
