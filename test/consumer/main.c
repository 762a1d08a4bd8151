/* A program that uses mior the way an outside project does: installed headers and library only.
 * CI builds it against an installed tree (CMake package and pkg-config) and runs it; it fails if
 * the installed library does not behave as its headers promise. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mior/mior.h>

static int fail(const char *what, int rc) {
  fprintf(stderr, "consumer: %s: %d (%s) %s\n", what, rc, mior_strerror(rc), mior_last_error());
  return 1;
}

int main(void) {
  mior_pool_options opts;
  mior_pool_options_init(&opts);
  opts.buf_count = 64;
  opts.buf_size = 2048;

  mior_pool *pool = NULL;
  int rc = mior_pool_create(&pool, &opts);
  if (rc < 0) return fail("mior_pool_create", rc);

  uint32_t slots[64];
  uint32_t n = 0;
  while (n < 64 && (rc = mior_pool_acquire(pool, &slots[n])) == 0) n++;
  if (n != 64) return fail("mior_pool_acquire (all 64 slots)", rc);
  /* The pool is empty now: one more acquire must say so rather than succeed. */
  uint32_t extra;
  rc = mior_pool_acquire(pool, &extra);
  if (rc != -ENOBUFS) return fail("mior_pool_acquire on an empty pool (want -ENOBUFS)", rc);

  /* Closing with slots out must refuse and report how many. */
  uint32_t outstanding = 0;
  rc = mior_pool_close(pool, &outstanding);
  if (rc != -EBUSY || outstanding != 64) return fail("mior_pool_close with slots out", rc);

  for (uint32_t i = 0; i < n; i++) {
    rc = mior_pool_release(pool, slots[i]);
    if (rc < 0) return fail("mior_pool_release", rc);
  }
  rc = mior_pool_close(pool, &outstanding);
  if (rc < 0) return fail("mior_pool_close", rc);

  const char *text = mior_strerror(-EINVAL);
  if (text == NULL || text[0] == '\0') return fail("mior_strerror(-EINVAL) is empty", -EINVAL);

  printf("consumer OK: mior %s, pool of %u slots, strerror(-EINVAL) = \"%s\"\n", mior_version(),
         (unsigned)n, text);
  return 0;
}
