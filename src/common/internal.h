/* Internal helpers shared by the front end and the backends.  Not installed. */
#ifndef MIOR_COMMON_INTERNAL_H
#define MIOR_COMMON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#  define MIOR_LIKELY(x) __builtin_expect(!!(x), 1)
#  define MIOR_UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define MIOR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define MIOR_LIKELY(x) (x)
#  define MIOR_UNLIKELY(x) (x)
#  define MIOR_PRINTF(a, b)
#endif

/* Thread-local storage.  MSVC's C mode does not take the _Thread_local keyword, even with
 * /std:c11; __declspec(thread) means the same for static data, also in a DLL loaded at run time
 * (Windows Vista and later). */
#if defined(_MSC_VER) && !defined(__clang__)
#  define MIOR_THREAD_LOCAL __declspec(thread)
#else
#  define MIOR_THREAD_LOCAL _Thread_local
#endif

/* 1 if v is a power of two (slot sizes, ring sizes). */
static inline int mior__is_pow2(uint32_t v) {
  return v && !(v & (v - 1));
}

/* Record the detail of a failure for mior_last_error() and return err as a negative errno. */
int mior__fail(int err, const char *fmt, ...) MIOR_PRINTF(2, 3);
void mior__clear_error(void);

#endif
