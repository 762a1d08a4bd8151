/* mior-perf: log-linear histogram (see hist.h). */
#include "hist.h"

#include <string.h>

void hist_init(hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

/* The index of the highest set bit of v (v > 0).  Plain C, so MSVC builds it too; a few shifts
 * per recorded round trip cost nothing next to the round trip. */
static uint32_t msb64(uint64_t v) {
  uint32_t n = 0;
  for (uint32_t s = 32; s; s >>= 1)
    if (v >> s) {
      v >>= s;
      n += s;
    }
  return n;
}

uint32_t hist_index(uint64_t v) {
  const uint64_t sub = 1u << HIST_SUB_BITS;
  if (v < 2 * sub) return (uint32_t)v;
  uint32_t msb = msb64(v);
  uint32_t k = msb - HIST_SUB_BITS; /* v >> k lies in [sub, 2 * sub) */
  return (k + 1) * (uint32_t)sub + (uint32_t)((v >> k) - sub);
}

uint64_t hist_bucket_low(uint32_t idx) {
  const uint32_t sub = 1u << HIST_SUB_BITS;
  if (idx < 2 * sub) return idx;
  uint32_t k = idx / sub - 1;
  return (uint64_t)(idx % sub + sub) << k;
}

void hist_add(hist *h, uint64_t v) {
  h->bucket[hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

uint64_t hist_quantile(const hist *h, double q) {
  if (h->count == 0) return 0;
  if (q <= 0) return h->min;
  if (q >= 1) return h->max;
  /* ceil(q * count), without libm */
  double want = q * (double)h->count;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want) rank++;
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= rank) {
      uint64_t low = hist_bucket_low(i);
      uint64_t width = hist_bucket_low(i + 1) - low;
      uint64_t v = low + width / 2;
      if (v < h->min) v = h->min;
      if (v > h->max) v = h->max;
      return v;
    }
  }
  return h->max;
}

double hist_mean(const hist *h) {
  return h->count ? (double)h->sum / (double)h->count : 0.0;
}
