/* Fuzz the text parsers that take user or configuration input: addresses (mior_addr_parse and
 * the round trip through mior_addr_format), endpoint strings (udp://, ip://, packet://) and
 * backend names.  The input is used as a NUL-terminated string. */
#include <errno.h>

#include "common/backend.h"
#include "fuzz_common.h"

#ifndef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size);
int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *s = malloc(size + 1);
  FUZZ_ASSERT(s != NULL);
  memcpy(s, data, size);
  s[size] = '\0';

  mior_addr a;
  int rc = mior_addr_parse(&a, s);
  FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
  if (rc == 0) {
    FUZZ_ASSERT(a.family == MIOR_AF_INET || a.family == MIOR_AF_INET6);
    char text[64], text2[64];
    FUZZ_ASSERT(mior_addr_format(&a, text, sizeof text) == 0);
    FUZZ_ASSERT(strlen(text) < sizeof text);
    /* What we print we must read back to the same address. */
    mior_addr b;
    FUZZ_ASSERT(mior_addr_parse(&b, text) == 0);
    FUZZ_ASSERT(mior_addr_format(&b, text2, sizeof text2) == 0);
    FUZZ_ASSERT(strcmp(text, text2) == 0);
    FUZZ_ASSERT(b.family == a.family && b.port == a.port);
    FUZZ_ASSERT(memcmp(b.addr, a.addr, a.family == MIOR_AF_INET ? 4 : 16) == 0);
    /* A small buffer is refused, not overrun. */
    char tiny[4];
    FUZZ_ASSERT(mior_addr_format(&a, tiny, sizeof tiny) == -ENOSPC || strlen(text) < sizeof tiny);
  }

  mior__endpoint ep;
  rc = mior__endpoint_parse(&ep, s);
  FUZZ_ASSERT(rc <= 0);
  if (rc == 0) {
    FUZZ_ASSERT(ep.kind == MIOR__KIND_UDP || ep.kind == MIOR__KIND_IP || ep.kind == MIOR__KIND_PACKET);
    if (ep.kind == MIOR__KIND_PACKET) FUZZ_ASSERT(memchr(ep.ifname, '\0', sizeof ep.ifname) != NULL);
    if (ep.kind == MIOR__KIND_IP) FUZZ_ASSERT(ep.ip_proto >= 0 && ep.ip_proto <= 255);
  }

  mior_backend b;
  rc = mior_backend_parse(s, &b);
  FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
  if (rc == 0) FUZZ_ASSERT(strcmp(mior_backend_name(b), s) == 0);
  free(s);
  return 0;
}
