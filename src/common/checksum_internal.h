/* Internal interface between the checksum front end (checksum.c) and its vectorised
 * implementations (checksum_x86.c).  Not installed. */
#ifndef MIOR_CHECKSUM_INTERNAL_H
#define MIOR_CHECKSUM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Same contract as mior_csum_partial.  On an architecture without them they are never selected
 * (the mior__csum_cpu_has_* probes return 0), but still defined so the table links. */
uint32_t mior__csum_partial_sse2(const void *buf, size_t len, uint32_t sum);
uint32_t mior__csum_partial_avx2(const void *buf, size_t len, uint32_t sum);

/* 1 if the CPU and the operating system support the instruction set, else 0. */
int mior__csum_cpu_has_sse2(void);
int mior__csum_cpu_has_avx2(void);

/* Add x to a 64-bit ones' complement accumulator (end-around carry).  2^64 = 1 modulo 0xffff,
 * so a carry out of bit 63 is worth 1. */
static inline uint64_t mior__csum_add64(uint64_t acc, uint64_t x) {
  acc += x;
  return acc + (acc < x);
}

/* Fold a 64-bit accumulator to an unfolded 32-bit partial sum with the same value modulo
 * 0xffff (2^32 = 1 modulo 0xffff). */
static inline uint32_t mior__csum_fold64(uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return (uint32_t)acc;
}

#endif
