/* Options structs that grow: one rule for every sz-versioned struct (mior_options,
 * mior_pool_options, the lwIP adapter's mior_lwip_options), the rule of libxdp's and libbpf's
 * OPTS_VALID / OPTS_GET (here OPTS_CHECK / OPTS_GET).
 *
 * Each such struct starts with `size_t sz`, the size of the struct the caller was compiled with.
 *   - A caller built against an older, smaller header passes a smaller sz.  The library reads only
 *     the fields that sz covers whole (OPTS_GET); every other field takes its default, so the old
 *     program keeps working unchanged.
 *   - A caller built against a newer header passes a larger sz.  That is accepted as long as every
 *     byte past this library's struct is zero: the newer fields were left at their defaults.  A
 *     non-zero one asks for something this library cannot do, and ignoring it would be a silent
 *     misbehaviour, so OPTS_CHECK refuses it.
 *   - An sz that does not even cover sz itself, or one larger than any options struct could be, is
 *     not a size at all: the struct was never initialised.
 * NULL means "all defaults" and is valid.
 *
 * Whoever grows a struct must start the new field at or beyond the old sizeof (give the tail
 * padding an explicit reserved field first): a field placed in the old padding would sit below an
 * older library's sizeof, where that library neither reads it nor checks that it is zero.
 *
 * Defaults live in one place, the struct's *_options_init function.  A resolve path starts from
 * an init'd struct and reads each field over it with OPTS_GET (or OPTS_GET_NZ for a field whose
 * zero means "the default"), so it never carries its own copy of a default value.
 *
 * Header-only, calling nothing in the library, so the lwIP adapter, which links only the public
 * library, follows the same rule.  Each caller words its own error message from the verdict.
 */
#ifndef MIOR_COMMON_OPTS_H
#define MIOR_COMMON_OPTS_H

#include <stddef.h>

/* Larger than any options struct mior will define: a bigger sz is garbage, not a newer caller. */
#define MIOR__OPTS_MAX_SZ 4096u

/* The offset just past a field of a struct type. */
#define MIOR__OFFSETOFEND(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* What OPTS_CHECK found. */
enum {
  MIOR__OPTS_OK = 0,
  MIOR__OPTS_BAD_SZ = 1,      /* sz does not cover sz itself, or is absurdly large */
  MIOR__OPTS_UNKNOWN_SET = 2, /* a newer caller set a field this library does not know */
};

static inline int mior__opts_check(const void *opts, size_t user_sz, size_t min_sz,
                                   size_t lib_sz) {
  if (!opts) return MIOR__OPTS_OK;
  if (user_sz < min_sz || user_sz > MIOR__OPTS_MAX_SZ) return MIOR__OPTS_BAD_SZ;
  const unsigned char *p = (const unsigned char *)opts;
  for (size_t i = lib_sz; i < user_sz; i++)
    if (p[i]) return MIOR__OPTS_UNKNOWN_SET;
  return MIOR__OPTS_OK;
}

/* MIOR__OPTS_OK if opts (a const type *, or NULL) may be read with OPTS_GET, else why not.  This
 * is libxdp's OPTS_VALID, made to say why rather than just "no", so that each caller can name the
 * problem in its error message.  The sizeof of a pointer comparison makes the compiler check that
 * opts really points to a type, without evaluating anything. */
#define OPTS_CHECK(opts, type)                                                                  \
  ((void)sizeof((opts) == (const type *)0),                                                     \
   mior__opts_check((opts), (opts) ? (opts)->sz : 0, MIOR__OFFSETOFEND(type, sz), sizeof(type)))

/* Nonzero if the caller's struct (already checked with OPTS_CHECK) holds field whole.  The
 * field's end is computed from its address, not read, so this is safe for any sz. */
#define OPTS_HAS(opts, field)                                                                   \
  ((opts) && (opts)->sz >= (size_t)((const char *)&(opts)->field - (const char *)(opts)) +      \
                               sizeof((opts)->field))

/* The caller's field if its struct holds it, else dflt. */
#define OPTS_GET(opts, field, dflt) (OPTS_HAS(opts, field) ? (opts)->field : (dflt))

/* The same for a field whose zero (or NULL) means "the default": dflt also when it is zero. */
#define OPTS_GET_NZ(opts, field, dflt) (OPTS_GET(opts, field, 0) ? (opts)->field : (dflt))

#endif
