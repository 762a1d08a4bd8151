/* mior: common definitions shared by every public header.
 *
 * Error convention: every call returns 0 (or a non-negative count where documented) on success
 * and a negative errno value on failure.  mior_strerror() turns any such value into text, and
 * mior_last_error() gives the detail of the most recent failure on the calling thread (for
 * example which part of an endpoint string was wrong).
 */
#ifndef MIOR_COMMON_H
#define MIOR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(MIOR_BUILDING)
#    define MIOR_API __declspec(dllexport)
#  elif defined(MIOR_STATIC)
#    define MIOR_API
#  else
#    define MIOR_API __declspec(dllimport)
#  endif
#else
#  define MIOR_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_VERSION_MAJOR 0
#define MIOR_VERSION_MINOR 1
#define MIOR_VERSION_PATCH 0

/* "major.minor.patch" of the library actually loaded. */
MIOR_API const char *mior_version(void);

/* Text for a return value of any mior call: a negative errno (or a positive one, taken as its
 * negation).  Never NULL; unknown codes give "unknown error <n>".  The string is static. */
MIOR_API const char *mior_strerror(int err);

/* Detail of the last failure reported by a mior call on the calling thread, such as
 * "endpoint 'udp://1.2.3.4:x': bad port 'x'".  Empty string when there is none.  The text stays
 * valid until the next failing mior call on the same thread. */
MIOR_API const char *mior_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_COMMON_H */
