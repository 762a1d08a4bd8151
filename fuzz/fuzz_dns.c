/* libFuzzer harness for examples/dns_zone.h, the parser and answer builder of
 * examples/dns_responder.c: any input must give a response within the output buffer and the
 * size limit (512 without EDNS, DNS_MAX_UDP with), with the query's id, QR set, and a count of
 * answers the response really holds; never a read past the input (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/dns_zone.h"

#ifndef FUZZ_ENTRY_NAME
#  define FUZZ_ENTRY_NAME LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size);

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size) {
  static dns_zone z;
  if (!z.n) dns_zone_example(&z, "example.test");
  /* An exact-size copy, so ASan sees any read past the end. */
  uint8_t *q = malloc(size ? size : 1);
  if (!q) return 0;
  memcpy(q, data, size);
  static uint8_t out[2048];
  dns_counters c;
  memset(&c, 0, sizeof c);
  size_t n = dns_answer(&z, q, size, out, sizeof out, &c);
  if (n) {
    if (n < DNS_HDR || n > DNS_MAX_UDP) abort();
    if (out[0] != q[0] || out[1] != q[1] || !(out[2] & 0x80)) abort();
    /* Walk the answers the header claims: each must lie inside the response. */
    size_t off = DNS_HDR;
    if (dns_get16(out + 4) == 1) {
      char name[256];
      if (dns_read_name(out, n, &off, name, sizeof name) < 0 || off + 4 > n) abort();
      off += 4;
      for (uint16_t i = 0; i < dns_get16(out + 6); i++) {
        if (off + 12 > n) abort();
        off += 12u + dns_get16(out + off + 10);
        if (off > n) abort();
      }
    } else if (dns_get16(out + 6) != 0) {
      abort();
    }
    if (c.dropped) abort();
  } else if (!c.dropped) {
    abort();
  }
  free(q);
  return 0;
}
