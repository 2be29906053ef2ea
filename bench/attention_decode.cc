// Decode attention over a paged KV cache as one serving step sees it: S sequences of C cached
// positions each (SmolVLM2-256M's attention shape: 9 query heads over 3 kv heads of 64 dims,
// 30 layers, f32 keys and values in blocks of 16 positions scattered over memory), every
// sequence's heads of one layer in one parallel loop. Reports the step's time and the bytes of
// keys and values it read per second, beside this machine's read bandwidth (measured by the
// caller, e.g. bench/read_bandwidth.c), as one JSON object.
//
//   build/release/iris-attention-decode [sequences (16)] [positions (280)] [steps (20)]
//
// Decode attention reads each cached key and value once per step and does little arithmetic
// on it, so its speed is the bandwidth it reaches.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "base/mapped_file.h"
#include "base/thread_pool.h"
#include "engine/kernels/kernels.h"
#include "engine/tensor/dtype.h"

int main(int argc, char** argv) {
  using namespace iris;
  // (Counts are clamped to [1, 256] sequences, [1, 16384] positions, [1, 10000] steps: at most
  // 256 × 1024 blocks of 720 KiB would be asked for, and the allocation says when that fails.)
  const size_t seqs = argc > 1 ? std::clamp(std::atoi(argv[1]), 1, 256) : 16;
  const size_t positions = argc > 2 ? std::clamp(std::atoi(argv[2]), 1, 16384) : 280;
  const int steps = argc > 3 ? std::clamp(std::atoi(argv[3]), 1, 10000) : 20;
  constexpr size_t kLayers = 30, kHeads = 9, kKvHeads = 3, kHeadDim = 64, kBlock = 16;
  constexpr size_t kGroup = kHeads / kKvHeads;
  const size_t blocks_per_seq = (positions + kBlock - 1) / kBlock;
  // A block holds 16 positions of every layer, as model::KvPool lays it out: per layer its
  // keys then its values, each [kv_heads, 16, head_dim]; blocks live in huge pages.
  const size_t head_floats = kBlock * kHeadDim;
  const size_t layer_floats = kKvHeads * head_floats;
  const size_t block_floats = 2 * kLayers * layer_floats;
  const size_t num_blocks = seqs * blocks_per_seq;
  auto buffer = AnonymousBuffer::Allocate(num_blocks * block_floats * sizeof(float));
  if (!buffer.ok()) {
    std::fprintf(stderr, "attention_decode: %s\n", buffer.status().ToString().c_str());
    return 1;
  }
  float* pool = reinterpret_cast<float*>(buffer->data());
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (size_t i = 0; i < num_blocks * block_floats; ++i) pool[i] = normal(rng);
  // Blocks in a random order, as a pool hands them out after a while of serving.
  std::vector<size_t> order(num_blocks);
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  // block pointers per (layer, sequence), keys and values
  std::vector<std::vector<const void*>> k_blocks(kLayers * seqs), v_blocks(kLayers * seqs);
  for (size_t s = 0; s < seqs; ++s) {
    for (size_t b = 0; b < blocks_per_seq; ++b) {
      const float* block = pool + order[s * blocks_per_seq + b] * block_floats;
      for (size_t l = 0; l < kLayers; ++l) {
        k_blocks[l * seqs + s].push_back(block + 2 * l * layer_floats);
        v_blocks[l * seqs + s].push_back(block + (2 * l + 1) * layer_floats);
      }
    }
  }
  std::vector<float> q(seqs * kHeads * kHeadDim), out(q.size());
  for (auto& v : q) v = normal(rng);
  ThreadPool pool_threads(0);
  const float scale = 0.125f;
  double best = 1e30, total = 0;
  for (int step = 0; step < steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t l = 0; l < kLayers; ++l) {
      pool_threads.ParallelFor(seqs * kKvHeads, 1, [&](size_t b, size_t e, int) {
        std::vector<float> scratch(kGroup * ((positions + 15) / 16 * 16));
        std::vector<const void*> kh(blocks_per_seq), vh(blocks_per_seq);
        for (size_t task = b; task < e; ++task) {
          const size_t s = task / kKvHeads, kvh = task % kKvHeads;
          for (size_t i = 0; i < blocks_per_seq; ++i) {
            kh[i] = static_cast<const float*>(k_blocks[l * seqs + s][i]) + kvh * head_floats;
            vh[i] = static_cast<const float*>(v_blocks[l * seqs + s][i]) + kvh * head_floats;
          }
          const size_t h0 = kvh * kGroup;
          kernels::AttentionDecodeBlocks(q.data() + (s * kHeads + h0) * kHeadDim, kHeadDim, kGroup,
                                         kh.data(), vh.data(), tensor::DType::kF32, kBlock,
                                         kHeadDim, positions, kHeadDim, scale, scratch.data(),
                                         out.data() + (s * kHeads + h0) * kHeadDim, kHeadDim);
        }
      });
    }
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, t);
    total += t;
  }
  const double bytes =
      2.0 * sizeof(float) * static_cast<double>(seqs * positions * kLayers * kKvHeads * kHeadDim);
  std::printf(
      "{\"sequences\": %zu, \"positions\": %zu, \"layers\": %zu, \"kv_bytes_per_step\": %.0f, "
      "\"threads\": %d, \"simd_target\": \"%s\", \"steps\": %d, \"best_ms\": %.3f, "
      "\"mean_ms\": %.3f, \"best_gb_per_s\": %.2f, \"mean_gb_per_s\": %.2f}\n",
      seqs, positions, kLayers, bytes, pool_threads.num_threads(), kernels::ActiveTarget().c_str(),
      steps, best * 1e3, total / steps * 1e3, bytes / best / 1e9, bytes / (total / steps) / 1e9);
  return 0;
}
