/* Vectorised Internet checksum for x86 (SSE2 and AVX2), chosen at run time by checksum.c.
 *
 * Method: load 16 or 32 bytes, split every 64-bit lane into its low and high 32-bit words (an AND
 * and a shift, which avoid the shuffle port), and add both into 64-bit lane accumulators.  A
 * 64-bit lane can take 2^32 such additions before it could overflow; the loop folds the lanes
 * into one ones' complement total every CSUM_CHUNK bytes, far sooner.  Several accumulators per
 * iteration keep the adds independent.  Words are summed in the CPU's own (little-endian) order,
 * like the scalar reference, so results are interchangeable; the tail under one vector goes to
 * the scalar code, which starts at an even offset and so continues the same word alignment.
 *
 * With GCC and clang the functions are compiled for their instruction set with the target
 * attribute, so the rest of the library (and this file's callers) need no -mavx2; MSVC compiles
 * any intrinsic without one.  They are only called after the CPU probe says the CPU and the OS
 * support the instructions: __builtin_cpu_supports with GCC and clang, CPUID and XGETBV with
 * MSVC-compatible compilers (which lack it, or, as clang-cl, lack the runtime behind it).  On
 * other architectures this file provides stand-ins that are never selected.
 */
/* These files are always part of the library: export, not import, the public names even when
 * compiled on their own (the CMake build defines MIOR_BUILDING too). */
#ifndef MIOR_BUILDING
#define MIOR_BUILDING
#endif
#include <stddef.h>
#include <stdint.h>

#include "mior/proto/checksum.h"
#include "common/checksum_internal.h"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)

#include <immintrin.h>

#define CSUM_CHUNK ((size_t)1 << 30)

/* Compile a function for an instruction set the build does not assume. */
#if defined(__GNUC__) || defined(__clang__)
#  define CSUM_TARGET(isa) __attribute__((target(isa)))
#else
#  define CSUM_TARGET(isa)
#endif

#if defined(_MSC_VER)

#include <intrin.h>

int mior__csum_cpu_has_sse2(void) {
  int r[4];
  __cpuid(r, 1);
  return (r[3] >> 26) & 1; /* EDX bit 26: SSE2 (always set on x64) */
}

int mior__csum_cpu_has_avx2(void) {
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return 0;
  __cpuid(r, 1);
  /* ECX bit 27: the OS enabled XSAVE (so XGETBV works); bit 28: AVX. */
  if (!((r[2] >> 27) & 1) || !((r[2] >> 28) & 1)) return 0;
  /* XCR0 bits 1 and 2: the OS saves the SSE and AVX registers on a context switch. */
  if ((_xgetbv(0) & 6) != 6) return 0;
  __cpuidex(r, 7, 0);
  return (r[1] >> 5) & 1; /* leaf 7 EBX bit 5: AVX2 */
}

#else

int mior__csum_cpu_has_sse2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse2") != 0;
}

int mior__csum_cpu_has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}

#endif

CSUM_TARGET("sse2") static uint64_t sse2_lanes(__m128i a) {
  uint64_t l[2];
  _mm_storeu_si128((__m128i *)l, a);
  return mior__csum_add64(l[0], l[1]);
}

CSUM_TARGET("sse2") uint32_t mior__csum_partial_sse2(const void *buf, size_t len, uint32_t sum) {
  const uint8_t *p = buf;
  uint64_t total = sum;
  const __m128i lo32 = _mm_set_epi32(0, -1, 0, -1);

  while (len >= 16) {
    size_t chunk = len < CSUM_CHUNK ? len & ~(size_t)15 : CSUM_CHUNK;
    const uint8_t *end = p + chunk;
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (; end - p >= 64; p += 64) {
      __m128i v0 = _mm_loadu_si128((const __m128i *)p);
      __m128i v1 = _mm_loadu_si128((const __m128i *)(p + 16));
      __m128i v2 = _mm_loadu_si128((const __m128i *)(p + 32));
      __m128i v3 = _mm_loadu_si128((const __m128i *)(p + 48));
      a0 = _mm_add_epi64(a0, _mm_and_si128(v0, lo32));
      a1 = _mm_add_epi64(a1, _mm_srli_epi64(v0, 32));
      a2 = _mm_add_epi64(a2, _mm_and_si128(v1, lo32));
      a3 = _mm_add_epi64(a3, _mm_srli_epi64(v1, 32));
      a0 = _mm_add_epi64(a0, _mm_and_si128(v2, lo32));
      a1 = _mm_add_epi64(a1, _mm_srli_epi64(v2, 32));
      a2 = _mm_add_epi64(a2, _mm_and_si128(v3, lo32));
      a3 = _mm_add_epi64(a3, _mm_srli_epi64(v3, 32));
    }
    for (; p < end; p += 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)p);
      a0 = _mm_add_epi64(a0, _mm_and_si128(v, lo32));
      a1 = _mm_add_epi64(a1, _mm_srli_epi64(v, 32));
    }
    /* Each lane is below 2^62 here, so these plain 64-bit adds cannot carry out. */
    __m128i a = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
    total = mior__csum_add64(total, sse2_lanes(a));
    len -= chunk;
  }
  return mior_csum_partial_scalar(p, len, mior__csum_fold64(total));
}

CSUM_TARGET("avx2") static uint64_t avx2_lanes(__m256i a) {
  uint64_t l[4];
  _mm256_storeu_si256((__m256i *)l, a);
  return mior__csum_add64(mior__csum_add64(l[0], l[1]), mior__csum_add64(l[2], l[3]));
}

CSUM_TARGET("avx2") uint32_t mior__csum_partial_avx2(const void *buf, size_t len, uint32_t sum) {
  const uint8_t *p = buf;
  uint64_t total = sum;
  const __m256i lo32 = _mm256_set_epi32(0, -1, 0, -1, 0, -1, 0, -1);

  while (len >= 32) {
    size_t chunk = len < CSUM_CHUNK ? len & ~(size_t)31 : CSUM_CHUNK;
    const uint8_t *end = p + chunk;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    __m256i a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (; end - p >= 128; p += 128) {
      __m256i v0 = _mm256_loadu_si256((const __m256i *)p);
      __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
      __m256i v2 = _mm256_loadu_si256((const __m256i *)(p + 64));
      __m256i v3 = _mm256_loadu_si256((const __m256i *)(p + 96));
      a0 = _mm256_add_epi64(a0, _mm256_and_si256(v0, lo32));
      a1 = _mm256_add_epi64(a1, _mm256_srli_epi64(v0, 32));
      a2 = _mm256_add_epi64(a2, _mm256_and_si256(v1, lo32));
      a3 = _mm256_add_epi64(a3, _mm256_srli_epi64(v1, 32));
      a4 = _mm256_add_epi64(a4, _mm256_and_si256(v2, lo32));
      a5 = _mm256_add_epi64(a5, _mm256_srli_epi64(v2, 32));
      a6 = _mm256_add_epi64(a6, _mm256_and_si256(v3, lo32));
      a7 = _mm256_add_epi64(a7, _mm256_srli_epi64(v3, 32));
    }
    for (; p < end; p += 32) {
      __m256i v = _mm256_loadu_si256((const __m256i *)p);
      a0 = _mm256_add_epi64(a0, _mm256_and_si256(v, lo32));
      a1 = _mm256_add_epi64(a1, _mm256_srli_epi64(v, 32));
    }
    __m256i a = _mm256_add_epi64(_mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)),
                                 _mm256_add_epi64(_mm256_add_epi64(a4, a5), _mm256_add_epi64(a6, a7)));
    total = mior__csum_add64(total, avx2_lanes(a));
    len -= chunk;
  }
  /* Under 32 bytes left: one SSE2 step (every AVX2 CPU has SSE2) would save little; the scalar
   * code handles the last 0..31 bytes. */
  return mior_csum_partial_scalar(p, len, mior__csum_fold64(total));
}

#else /* not x86 */

int mior__csum_cpu_has_sse2(void) {
  return 0;
}

int mior__csum_cpu_has_avx2(void) {
  return 0;
}

uint32_t mior__csum_partial_sse2(const void *buf, size_t len, uint32_t sum) {
  return mior_csum_partial_scalar(buf, len, sum);
}

uint32_t mior__csum_partial_avx2(const void *buf, size_t len, uint32_t sum) {
  return mior_csum_partial_scalar(buf, len, sum);
}

#endif
