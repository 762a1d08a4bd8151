/* mior_pcap: the classic pcap file format written with stdio, and a receiver wrapper that records
 * what a port delivers.  Portable C11: no libpcap, no OS calls beyond the OS layer's clock. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/internal.h"
#include "common/os.h"
#include "mior/pcap.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u /* microsecond timestamps, written in host byte order */
#define PCAP_DEFAULT_SNAPLEN 65535u

struct mior_pcap {
  FILE *f;
  /* A spin lock, not a mutex: a record is one short fwrite into stdio's buffer, and C11 gives no
   * portable mutex on mingw-w64 (no <threads.h>).  Contention is between a port's RX and TX
   * paths or a few ports' threads, for well under a microsecond each. */
  atomic_flag lock;
  uint32_t snaplen;
  int err;                 /* first write error (negative errno); recording stops after it */
  atomic_uint_least64_t count;
  /* Wall-clock time at open and the monotonic clock then: records are stamped open_wall +
   * (now - open_mono), which needs only C11's time() and the OS layer's monotonic clock, and
   * stays ordered even if the wall clock is stepped during the capture. */
  uint64_t open_wall_ns, open_mono_ns;
};

static void lock(mior_pcap *c) {
  while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire)) mior__cpu_relax();
}

static void unlock(mior_pcap *c) { atomic_flag_clear_explicit(&c->lock, memory_order_release); }

uint32_t mior_pcap_linktype_for(const char *endpoint) {
  if (!endpoint) return 0;
  if (strncmp(endpoint, "packet://", 9) == 0) return MIOR_PCAP_LINKTYPE_ETHERNET;
  if (strncmp(endpoint, "ip://", 5) == 0) return MIOR_PCAP_LINKTYPE_RAW;
  if (strncmp(endpoint, "udp://", 6) == 0) return MIOR_PCAP_LINKTYPE_USER0;
  return 0;
}

int mior_pcap_open(mior_pcap **out, const char *path, uint32_t linktype, uint32_t snaplen) {
  if (!out || !path || !*path || linktype == 0)
    return mior__fail(-EINVAL, "mior_pcap_open: %s", !out ? "NULL out" : !path || !*path ?
                      "no path" : "link type 0");
  *out = NULL;
  mior_pcap *c = calloc(1, sizeof *c);
  if (!c) return mior__fail(-ENOMEM, "mior_pcap_open: out of memory");
  atomic_flag_clear(&c->lock);
  c->snaplen = snaplen ? snaplen : PCAP_DEFAULT_SNAPLEN;
  c->f = fopen(path, "wb");
  if (!c->f) {
    int e = errno ? errno : EIO;
    free(c);
    return mior__fail(-e, "mior_pcap_open: cannot create %s: %s", path, strerror(e));
  }
  /* Records are small and frequent: a large stdio buffer turns them into few writes. */
  setvbuf(c->f, NULL, _IOFBF, 1 << 16);
  c->open_wall_ns = (uint64_t)time(NULL) * 1000000000ull;
  c->open_mono_ns = mior__now_ns();
  struct {
    uint32_t magic;
    uint16_t major, minor;
    int32_t thiszone;
    uint32_t sigfigs, snaplen, network;
  } hdr = {PCAP_MAGIC_US, 2, 4, 0, 0, c->snaplen, linktype};
  if (fwrite(&hdr, sizeof hdr, 1, c->f) != 1) {
    fclose(c->f);
    free(c);
    return mior__fail(-EIO, "mior_pcap_open: cannot write the header of %s", path);
  }
  *out = c;
  return 0;
}

int mior_pcap_write(mior_pcap *c, const void *data, uint32_t len) {
  if (!c || (!data && len)) return mior__fail(-EINVAL, "mior_pcap_write: NULL %s", c ? "data" : "capture");
  uint64_t t = c->open_wall_ns + (mior__now_ns() - c->open_mono_ns);
  uint32_t incl = len < c->snaplen ? len : c->snaplen;
  uint32_t rec[4] = {(uint32_t)(t / 1000000000u), (uint32_t)(t % 1000000000u / 1000u), incl, len};
  int rc = 0;
  lock(c);
  if (c->err) {
    rc = c->err;
  } else if (fwrite(rec, sizeof rec, 1, c->f) != 1 || (incl && fwrite(data, incl, 1, c->f) != 1)) {
    c->err = rc = -EIO;
  } else {
    atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
  }
  unlock(c);
  if (rc < 0) return mior__fail(rc, "mior_pcap_write: the capture file could not be written; "
                                "recording stopped");
  return 0;
}

int mior_pcap_flush(mior_pcap *c) {
  if (!c) return mior__fail(-EINVAL, "mior_pcap_flush: NULL capture");
  lock(c);
  int rc = c->err;
  if (!rc && fflush(c->f) != 0) c->err = rc = -EIO;
  unlock(c);
  return rc < 0 ? mior__fail(rc, "mior_pcap_flush: the capture file could not be written") : 0;
}

uint64_t mior_pcap_count(const mior_pcap *c) {
  return c ? atomic_load_explicit(&((mior_pcap *)c)->count, memory_order_relaxed) : 0;
}

int mior_pcap_close(mior_pcap *c) {
  if (!c) return 0;
  int rc = c->err;
  if (fclose(c->f) != 0 && !rc) rc = -EIO;
  free(c);
  return rc < 0 ? mior__fail(rc, "mior_pcap_close: the capture file could not be written") : 0;
}

static int tap_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  mior_pcap_tap *tap = ctx;
  mior_pcap_write(tap->cap, pkt->data, pkt->len);
  return tap->inner.consume ? tap->inner.consume(tap->inner.ctx, port, pkt) : MIOR_DONE;
}

static void tap_flush(void *ctx, mior_port *port) {
  mior_pcap_tap *tap = ctx;
  if (tap->inner.flush) tap->inner.flush(tap->inner.ctx, port);
}

int mior_pcap_wrap_receiver(mior_pcap_tap *tap, mior_pcap *cap, const mior_receiver *inner,
                            mior_receiver *out) {
  if (!tap || !cap || !out) return mior__fail(-EINVAL, "mior_pcap_wrap_receiver: NULL argument");
  memset(tap, 0, sizeof *tap);
  tap->cap = cap;
  if (inner) tap->inner = *inner;
  out->consume = tap_consume;
  out->flush = tap_flush;
  out->ctx = tap;
  return 0;
}

int mior_pcap_tx_send(mior_pcap *cap, mior_port *port, mior_pkt *pkt, uint32_t len,
                      const mior_addr *dst) {
  if (cap && pkt && pkt->data && len <= pkt->cap) mior_pcap_write(cap, pkt->data, len);
  return mior_tx_send(port, pkt, len, dst);
}
