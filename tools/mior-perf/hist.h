/* mior-perf: a log-linear latency histogram in nanoseconds.
 *
 * Values below 128 ns are kept exactly; above, each power of two is cut into 64 buckets, so a
 * percentile is within 1/64 (1.6 %) of the true value.  Min, max and the sum are exact.  Fixed
 * size (about 30 KiB), no allocation while recording.
 */
#ifndef MIOR_PERF_HIST_H
#define MIOR_PERF_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

typedef struct hist {
  uint64_t count, sum, min, max;
  uint64_t bucket[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t v);
/* The value at quantile q (0..1): the smallest recorded bucket that has at least q of the
 * samples at or below it, reported as the bucket's midpoint, clamped to [min, max]. 0 if empty. */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);

/* Bucket arithmetic, exposed for the self-checks. */
uint32_t hist_index(uint64_t v);
uint64_t hist_bucket_low(uint32_t idx);

#endif
