// Memory read bandwidth of this machine, as the engines see it when they stream weights: N
// threads each sum their share of a buffer far larger than the caches, several passes, best
// pass reported in GB/s as JSON. Built and run by bench/engine_vs_llamacpp.sh:
//   cc -O2 -march=native -fopenmp bench/read_bandwidth.c -o read_bandwidth && ./read_bandwidth 2
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1;
  const size_t bytes = (size_t)1 << 30;  // 1 GiB
  const size_t n = bytes / sizeof(uint64_t);
  uint64_t* buf = aligned_alloc(64, bytes);
  if (buf == NULL) return 1;
  memset(buf, 1, bytes);
  omp_set_num_threads(threads);
  double best = 1e30;
  uint64_t total = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const double t0 = now();
    uint64_t sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; ++i) sum += buf[i];
    const double t = now() - t0;
    total += sum;
    if (t < best) best = t;
  }
  printf("{\"threads\": %d, \"read_gb_per_s\": %.2f, \"check\": %llu}\n", threads,
         (double)bytes / best / 1e9, (unsigned long long)(total & 1));
  free(buf);
  return 0;
}
