/* Shared by the fuzz harnesses.
 *
 * Each harness defines LLVMFuzzerTestOneInput and nothing else with external linkage, so it builds
 * two ways: with clang -fsanitize=fuzzer as a libFuzzer executable (fuzz/CMakeLists.txt), and
 * #included by test/test_linux_fuzz_replay.c, which renames the entry point with
 * FUZZ_ENTRY_NAME and replays fuzz/seeds/ and fuzz/regress/ through every harness in a normal
 * (gcc, optionally ASan) build.  A harness reports a broken invariant with FUZZ_ASSERT, which
 * aborts: libFuzzer saves the input, and the replay test fails.
 */
#ifndef MIOR_FUZZ_COMMON_H
#define MIOR_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mior/mior.h>

#define FUZZ_ASSERT(cond)                                                              \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

/* Parsers return only these (types.h); anything else is a bug. */
#define FUZZ_PARSE_RC_OK(rc) ((rc) == 0 || (rc) == -EBADMSG || (rc) == -EPROTONOSUPPORT)

/* Copy into a buffer of exactly n bytes (at least 1 allocated) so ASan sees any read past the
 * end, whoever supplied the bytes (libFuzzer already does this; the replay test does not). */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  FUZZ_ASSERT(p != NULL);
  if (n) memcpy(p, data, n);
  return p;
}

#endif
