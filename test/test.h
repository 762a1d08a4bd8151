/* Tiny test harness: one executable per test file, exit 0 pass, 1 fail, 77 skip (CTest's
 * SKIP_RETURN_CODE).  Each check prints where it failed and the values involved. */
#ifndef MIOR_TEST_H
#define MIOR_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mior/mior.h>

#define TEST_SKIP_CODE 77

/* Checks that failed in this test program (defined once, in test/support/test_state.c). */
extern int test_failures;

#define TEST_FAIL_AT(...)                                                  \
  do {                                                                     \
    fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                  \
    fprintf(stderr, __VA_ARGS__);                                          \
    fputc('\n', stderr);                                                   \
    test_failures++;                                                       \
  } while (0)

/* Soft check: records the failure and goes on. */
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) TEST_FAIL_AT("%s", #cond);                                \
  } while (0)

/* Hard check: stops the test at once. */
#define REQUIRE(cond)                                                      \
  do {                                                                     \
    if (!(cond)) {                                                         \
      TEST_FAIL_AT("%s", #cond);                                           \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

#define CHECK_EQ(a, b)                                                     \
  do {                                                                     \
    long long va_ = (long long)(a), vb_ = (long long)(b);                  \
    if (va_ != vb_) TEST_FAIL_AT("%s == %s (%lld != %lld)", #a, #b, va_, vb_); \
  } while (0)

/* A call that must return 0; prints mior_strerror and mior_last_error otherwise. */
#define CHECK_OK(call)                                                     \
  do {                                                                     \
    int rc_ = (call);                                                      \
    if (rc_ < 0)                                                           \
      TEST_FAIL_AT("%s -> %d (%s) %s", #call, rc_, mior_strerror(rc_), mior_last_error()); \
  } while (0)

#define REQUIRE_OK(call)                                                   \
  do {                                                                     \
    int rc_ = (call);                                                      \
    if (rc_ < 0) {                                                         \
      TEST_FAIL_AT("%s -> %d (%s) %s", #call, rc_, mior_strerror(rc_), mior_last_error()); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

#define CHECK_ERR(call, err)                                               \
  do {                                                                     \
    int rc_ = (call);                                                      \
    if (rc_ != (err))                                                      \
      TEST_FAIL_AT("%s -> %d (%s), expected %d (%s)", #call, rc_, mior_strerror(rc_), (err), \
                   mior_strerror(err));                                    \
  } while (0)

#define TEST_SKIP(...)                                                     \
  do {                                                                     \
    printf("SKIP: ");                                                      \
    printf(__VA_ARGS__);                                                   \
    printf("\n");                                                          \
    fflush(stdout);                                                        \
    exit(TEST_SKIP_CODE);                                                  \
  } while (0)

/* End of main: 0 if every check passed. */
#define TEST_DONE()                                                        \
  do {                                                                     \
    if (test_failures) {                                                   \
      fprintf(stderr, "%d check(s) failed\n", test_failures);              \
      return 1;                                                            \
    }                                                                      \
    printf("PASS\n");                                                      \
    return 0;                                                              \
  } while (0)

#endif /* MIOR_TEST_H */
