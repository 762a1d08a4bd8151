/* The Internet checksum (RFC 1071): a vectorised fast path, a scalar reference, pseudo-header
 * sums for UDP/TCP/ICMPv6, and incremental updates (RFC 1624).
 *
 * Byte order.  The ones' complement sum does not depend on byte order (RFC 1071, section 2(B)):
 * every function here adds the buffer as 16-bit words loaded in the CPU's own order, so partial
 * sums and results are "as stored".  The 16-bit value returned by mior_csum_fold() and the
 * helpers built on it is exactly the value to put into a header's checksum field by a plain
 * assignment to a uint16_t field of a packed header or by memcpy of its two bytes: it must NOT be
 * passed through htons().  The bytes it produces in memory are the checksum in network byte
 * order.  For the same reason, values read back from a packet with memcpy (or a packed header
 * field) can be compared with it directly.
 *
 * Chaining.  A partial sum is an unfolded 32-bit value to pass as `sum` to the next call.  Every
 * piece but the last must have an even length (or use mior_csum_block_add, which accounts for an
 * odd offset).  The folded result of any chain is the same whichever implementation computed it.
 */
#ifndef MIOR_PROTO_CHECKSUM_H
#define MIOR_PROTO_CHECKSUM_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ones' complement sum of buf[0..len) added to sum, unfolded.  Chooses the fastest
 * implementation the CPU has (AVX2, SSE2 or scalar) on first use.  Any alignment, any length. */
MIOR_API uint32_t mior_csum_partial(const void *buf, size_t len, uint32_t sum);

/* The portable reference: the same result as mior_csum_partial once folded. */
MIOR_API uint32_t mior_csum_partial_scalar(const void *buf, size_t len, uint32_t sum);

/* Fold a partial sum to 16 bits and complement it: the value to store in a checksum field
 * (see "Byte order" above).  A buffer that already holds a correct checksum folds to 0. */
MIOR_API uint16_t mior_csum_fold(uint32_t sum);

/* mior_csum_fold(mior_csum_partial(buf, len, 0)): the checksum of one buffer, e.g. an IPv4
 * header whose checksum field is zero (to compute) or filled (to verify: 0 means correct). */
MIOR_API uint16_t mior_csum(const void *buf, size_t len);

/* Add the partial sum `add` of a block that starts `offset` bytes into the checksummed data to
 * the partial sum `sum` of what precedes it.  An odd offset swaps the block's bytes, as the
 * words of the block then straddle the words of the whole. */
MIOR_API uint32_t mior_csum_block_add(uint32_t sum, uint32_t add, size_t offset);

/* The implementation mior_csum_partial uses now: "avx2", "sse2" or "scalar". */
MIOR_API const char *mior_csum_impl(void);

/* Force an implementation: "avx2", "sse2", "scalar", or "auto" (the best the CPU has).
 * -EOPNOTSUPP if the CPU (or this build's architecture) lacks it, -EINVAL for an unknown name or
 * NULL.  Meant for tests and benchmarks: it changes the choice for every thread at once (the
 * switch itself is atomic, and every implementation gives the same results). */
MIOR_API int mior_csum_select(const char *name);

/* Measure one implementation without changing the global choice: checksum a `len`-byte buffer
 * (allocated here, aligned at `align` bytes past a 64-byte boundary) repeatedly for at least
 * `seconds` of processor time and store the rate in bytes per second (10^9 = 1 GB/s) in *rate.
 * Returns 0, -EOPNOTSUPP if the implementation is not available, -EINVAL for bad arguments,
 * -ENOMEM.  Times with clock(): processor time on Linux (robust against other load), wall time
 * on Windows; run it with a few hundred milliseconds at least. */
MIOR_API int mior_csum_bench(const char *impl, size_t len, size_t align, double seconds,
                             double *rate);

/* Pseudo-header partial sums (unfolded), to chain with the sum of the L4 segment.
 * Addresses are in network byte order (as on the wire); proto and len are host values: len is
 * the L4 length (UDP/TCP header + data). */
MIOR_API uint32_t mior_csum_pseudo_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                                        uint16_t len);
MIOR_API uint32_t mior_csum_pseudo_ipv6(const uint8_t src[16], const uint8_t dst[16],
                                        uint8_t next_header, uint32_t len);

/* Checksum of an L4 segment (UDP, TCP, ICMPv6: anything with the pseudo-header) whose checksum
 * field is ZERO, to store in that field.  For UDP (proto 17) a computed 0 becomes 0xffff, as
 * RFC 768 and RFC 8200 require (0 on the wire means "no checksum"). */
MIOR_API uint16_t mior_csum_l4_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                                    const void *seg, size_t len);
MIOR_API uint16_t mior_csum_l4_ipv6(const uint8_t src[16], const uint8_t dst[16],
                                    uint8_t next_header, const void *seg, size_t len);

/* 1 if the segment (checksum field filled in) verifies, else 0.  UDP over IPv4 with a zero
 * checksum field (checksum not computed by the sender) counts as valid; over IPv6 it does not.
 * len above 65535 over IPv4 gives 0. */
MIOR_API int mior_csum_l4_verify_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                                      const void *seg, size_t len);
MIOR_API int mior_csum_l4_verify_ipv6(const uint8_t src[16], const uint8_t dst[16],
                                      uint8_t next_header, const void *seg, size_t len);

/* Incremental update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')) after a 16-bit field changes
 * from old_val to new_val.  All three values in the same byte order: as stored (memcpy) is
 * simplest.  The field must sit at an even offset in the checksummed data (all header fields
 * covered by IPv4/UDP/TCP checksums do). */
MIOR_API uint16_t mior_csum_update16(uint16_t old_csum, uint16_t old_val, uint16_t new_val);

/* The same for a 32-bit field, e.g. an IPv4 address rewrite (NAT), as stored. */
MIOR_API uint16_t mior_csum_update32(uint16_t old_csum, uint32_t old_val, uint32_t new_val);

/* The same for len bytes changing from old_bytes to new_bytes, e.g. an IPv6 address.  len must
 * be even and the bytes must sit at an even offset; an odd len returns old_csum unchanged. */
MIOR_API uint16_t mior_csum_update(uint16_t old_csum, const void *old_bytes, const void *new_bytes,
                                   size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_CHECKSUM_H */
