/* The transport: options, backend choice, the ports and their threads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/opts.h"
#include "common/port.h"

#define MIOR_MAX_QUEUES 64u

void mior_options_init(mior_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->sz = sizeof *o;
  o->backend = MIOR_BACKEND_AUTO;
  o->sq_entries = 2048;
  o->cq_entries = 2048;
  /* buf_count and buf_size 0: chosen at open for the endpoint's kind (options_resolve). */
  o->buf_count = 0;
  o->buf_size = 0;
  o->queues = 1;
  o->rx_depth = 0; /* buf_count / 2, filled in at open */
  o->batch = 64;
  o->busy_poll_us = 0;
  o->cpu = -1;
  o->numa_node = -1;
  o->coalesce_us = 50; /* measured: docs/TUNING.md, "Receive coalescing" */
}

static const char *const backend_names[] = {"auto", "uring", "sockets", "ioring"};

const char *mior_backend_name(mior_backend b) {
  if ((unsigned)b < sizeof backend_names / sizeof backend_names[0]) return backend_names[b];
  return "unknown";
}

int mior_backend_parse(const char *name, mior_backend *out) {
  if (!name || !out) return mior__fail(-EINVAL, "mior_backend_parse: NULL argument");
  for (unsigned i = 0; i < sizeof backend_names / sizeof backend_names[0]; i++)
    if (strcmp(name, backend_names[i]) == 0) {
      *out = (mior_backend)i;
      return 0;
    }
  return mior__fail(-EINVAL, "unknown backend '%s' (expected auto, uring, sockets or ioring)", name);
}

const mior__backend_ops *mior__backend_find(mior_backend id) {
  for (const mior__backend_ops *const *b = mior__backends; *b; b++)
    if ((*b)->id == id) return *b;
  return NULL;
}

int mior_backend_supported(mior_backend b) {
  char why[160] = "";
  if (b == MIOR_BACKEND_AUTO) return mior__backends[0] != NULL;
  const mior__backend_ops *ops = mior__backend_find(b);
  if (!ops) {
    mior__fail(-EOPNOTSUPP, "backend '%s' is not part of this build for this OS", mior_backend_name(b));
    return 0;
  }
  if (!ops->supported(why, sizeof why)) {
    mior__fail(-EOPNOTSUPP, "backend '%s' unavailable: %s", ops->name, why);
    return 0;
  }
  return 1;
}

static const char *const feature_names[] = {
    "registered-buffers", "registered-file", "multishot-rx", "single-issuer", "defer-taskrun",
    "coop-taskrun",       "sqpoll",          "mmsg-batch",   "fallback",      "winsock-tx",
    "udp-gso",            "tx-ring",         "ioring-emulation", "udp-uso",
    "udp-gro",            "udp-uro",
};

int mior_features_format(uint32_t features, char *buf, size_t len) {
  if (!buf || len == 0) return mior__fail(-EINVAL, "mior_features_format: no buffer");
  size_t used = 0;
  buf[0] = '\0';
  for (unsigned i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++) {
    if (!(features & (1u << i))) continue;
    size_t nl = strlen(feature_names[i]);
    if (used + nl + (used ? 1 : 0) + 1 > len) return -ENOSPC;
    if (used) buf[used++] = ',';
    memcpy(buf + used, feature_names[i], nl);
    used += nl;
    buf[used] = '\0';
  }
  return 0;
}


/* The defaults (mior_options_init), then each field the caller's struct holds, the rule of
 * common/opts.h; then the checks.  A zero count or size means its default, as documented in
 * transport.h; a zero cq_entries means as many as sq_entries, and a zero rx_depth half the
 * buffers (below, once buf_count is known). */
static int options_resolve(mior_options *o, const mior_options *user, const mior__endpoint *ep) {
  switch (OPTS_CHECK(user, mior_options)) {
  case MIOR__OPTS_BAD_SZ:
    return mior__fail(-EINVAL, "mior_options.sz is %lu: call mior_options_init first",
                      (unsigned long)user->sz);
  case MIOR__OPTS_UNKNOWN_SET:
    return mior__fail(-EINVAL, "mior_options carries non-zero fields this library (sz %lu) does "
                      "not know", (unsigned long)sizeof *user);
  }
  /* A field appended to the struct fails the build here until it is read below too. */
  _Static_assert(sizeof(mior_options) - MIOR__OFFSETOFEND(mior_options, coalesce_us) <
                     _Alignof(mior_options),
                 "options_resolve reads every field of mior_options: add the new one");
  mior_options_init(o);
  o->backend = OPTS_GET(user, backend, o->backend);
  o->sq_entries = OPTS_GET_NZ(user, sq_entries, o->sq_entries);
  o->cq_entries = OPTS_GET_NZ(user, cq_entries, o->sq_entries);
  o->buf_count = OPTS_GET_NZ(user, buf_count, o->buf_count);
  o->buf_size = OPTS_GET_NZ(user, buf_size, o->buf_size);
  o->queues = OPTS_GET_NZ(user, queues, o->queues);
  o->rx_depth = OPTS_GET(user, rx_depth, o->rx_depth);
  o->batch = OPTS_GET_NZ(user, batch, o->batch);
  o->busy_poll_us = OPTS_GET(user, busy_poll_us, o->busy_poll_us);
  o->flags = OPTS_GET(user, flags, o->flags);
  o->cpu = OPTS_GET(user, cpu, o->cpu);
  o->numa_node = OPTS_GET(user, numa_node, o->numa_node);
  o->sndbuf = OPTS_GET(user, sndbuf, o->sndbuf);
  o->rcvbuf = OPTS_GET(user, rcvbuf, o->rcvbuf);
  o->peer = OPTS_GET(user, peer, o->peer);
  o->coalesce_us = OPTS_GET(user, coalesce_us, o->coalesce_us);
  if ((unsigned)o->backend > MIOR_BACKEND_IORING)
    return mior__fail(-EINVAL, "unknown backend %d", (int)o->backend);
  if (o->sq_entries > 32768 || o->cq_entries > 65536 || o->cq_entries < o->sq_entries)
    return mior__fail(-EINVAL, "sq_entries %u / cq_entries %u: need sq <= 32768, sq <= cq <= 65536",
                      o->sq_entries, o->cq_entries);
  /* Slots the caller chose are checked here; the defaults, which depend on the backend, are filled
   * in by slots_resolve once it is chosen. */
  if (o->buf_size && (!mior__is_pow2(o->buf_size) || o->buf_size < MIOR_POOL_MIN_BUF_SIZE ||
                      o->buf_size > MIOR_POOL_MAX_BUF_SIZE))
    return mior__fail(-EINVAL, "buf_size %u: need a power of two in [%u, %u]", o->buf_size,
                      MIOR_POOL_MIN_BUF_SIZE, MIOR_POOL_MAX_BUF_SIZE);
  if (o->buf_count && (o->buf_count < 2 || o->buf_count > MIOR_POOL_MAX_BUF_COUNT))
    return mior__fail(-EINVAL, "buf_count %u: need 2..%u", o->buf_count, MIOR_POOL_MAX_BUF_COUNT);
  if (o->queues > MIOR_MAX_QUEUES)
    return mior__fail(-EINVAL, "queues %u: at most %u", o->queues, MIOR_MAX_QUEUES);
  if (ep->kind == MIOR__KIND_IP && o->queues != 1)
    return mior__fail(-EINVAL, "queues %u: an ip:// endpoint has one queue", o->queues);
  if (o->batch > 1024 || o->batch > o->sq_entries)
    return mior__fail(-EINVAL, "batch %u: at most 1024 and at most sq_entries", o->batch);
  const uint32_t known = MIOR_OPT_NO_REGISTERED_BUFFERS | MIOR_OPT_NO_MULTISHOT | MIOR_OPT_SQPOLL |
                         MIOR_OPT_HUGEPAGES | MIOR_OPT_MLOCK | MIOR_OPT_NO_RX | MIOR_OPT_NO_DEFER_TASKRUN |
                         MIOR_OPT_UDP_GSO | MIOR_OPT_NO_TX_RING | MIOR_OPT_NO_UDP_GSO | MIOR_OPT_NO_UDP_GRO |
                         MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP |
                         MIOR_OPT_RX_TIMESTAMP_HW;
  if (o->flags & ~known) return mior__fail(-EINVAL, "unknown option flags 0x%x", o->flags & ~known);
  if (o->sndbuf < 0 || o->rcvbuf < 0) return mior__fail(-EINVAL, "negative socket buffer size");
  if (o->busy_poll_us > 1000000 || o->coalesce_us > 1000000)
    return mior__fail(-EINVAL, "busy_poll_us %u / coalesce_us %u: at most 1000000 (1 s)",
                      o->busy_poll_us, o->coalesce_us);
  return 0;
}

/* The slots of the backend the ports open with (again when AUTO moves to another one at open):
 * what the caller chose, else the default.  On a udp port whose backend takes coalesced receives
 * here (UDP GRO; Winsock URO where the stack has it) one slot holds one coalesced buffer, up to
 * 64 KiB (the kernel truncates, and so loses, what does not fit), so the default slot is 64 KiB
 * and fewer of them; elsewhere 2 KiB.  Why this layout: docs/ARCHITECTURE.md ("Coalesced
 * receive"). */
static int slots_resolve(mior_options *o, const mior_options *user, const mior__endpoint *ep,
                         const mior__backend_ops *ops) {
  int gro = ep->kind == MIOR__KIND_UDP && ops->rx_coalesce && ops->rx_coalesce(NULL, 0) &&
            !(o->flags & (MIOR_OPT_NO_UDP_GRO | MIOR_OPT_NO_RX)); /* a sender only keeps small slots */
  o->buf_size = OPTS_GET(user, buf_size, 0);
  o->buf_count = OPTS_GET(user, buf_count, 0);
  o->rx_depth = OPTS_GET(user, rx_depth, 0);
  if (o->buf_size == 0) o->buf_size = gro ? MIOR__GRO_BUF_SIZE : MIOR_POOL_DEFAULT_BUF_SIZE;
  if (o->buf_count == 0)
    o->buf_count = gro && o->buf_size >= MIOR__GRO_BUF_SIZE ? MIOR__GRO_BUF_COUNT : MIOR_POOL_DEFAULT_BUF_COUNT;
  if (o->rx_depth == 0) o->rx_depth = o->buf_count / 2;
  if (o->rx_depth >= o->buf_count || o->rx_depth > 32768)
    return mior__fail(-EINVAL, "rx_depth %u: must be below buf_count (%u) and at most 32768",
                      o->rx_depth, o->buf_count);
  return 0;
}

/* Pick the backend: the one demanded, or under AUTO the first that says it can run here. */
static int choose_backend(const mior_options *o, const mior__backend_ops **out, uint32_t *extra,
                          char *reason, size_t reason_len) {
  char why[160];
  *extra = 0;
  reason[0] = '\0';
  if (o->backend != MIOR_BACKEND_AUTO) {
    const mior__backend_ops *ops = mior__backend_find(o->backend);
    if (!ops)
      return mior__fail(-EOPNOTSUPP, "backend '%s' is not available on this OS",
                        mior_backend_name(o->backend));
    why[0] = '\0';
    if (!ops->supported(why, sizeof why))
      return mior__fail(-EOPNOTSUPP, "backend '%s' was demanded but is unavailable: %s", ops->name, why);
    *out = ops;
    return 0;
  }
  for (const mior__backend_ops *const *b = mior__backends; *b; b++) {
    why[0] = '\0';
    if ((*b)->supported(why, sizeof why)) {
      *out = *b;
      return 0;
    }
    if (!reason[0]) {
      snprintf(reason, reason_len, "%s: %s", (*b)->name, why);
      *extra = MIOR_FEAT_FALLBACK;
    }
  }
  if (!mior__backends[0])
    return mior__fail(-EOPNOTSUPP, "this build has no packet backend for this operating system yet");
  return mior__fail(-EOPNOTSUPP, "no packet backend can run here (%s)", reason);
}

/* The first backend after cur, in order of preference, that says it can run here; or NULL. */
static const mior__backend_ops *next_supported(const mior__backend_ops *cur) {
  const mior__backend_ops *const *b = mior__backends;
  while (*b && *b != cur) b++;
  if (!*b) return NULL;
  for (b++; *b; b++) {
    char why[160];
    if ((*b)->supported(why, sizeof why)) return *b;
  }
  return NULL;
}

static void port_thread(void *arg) {
  struct mior_port *p = arg;
  int rc = mior__port_claim(p);
  while (rc == 0 && !atomic_load_explicit(&p->stop, memory_order_acquire)) {
    /* A short bounded wait so stop is seen promptly even when no packet arrives. */
    rc = mior_port_poll(p, 0, 20000);
    if (rc == -EINTR || rc == -EAGAIN || rc >= 0) rc = 0;
  }
  if (rc < 0) {
    /* The user learns it from the port's stats (thread_error, thread_running) and from
     * mior_transport_stop; the other ports' threads go on. */
    atomic_store_explicit(&p->thread_rc, rc, memory_order_release);
  }
  /* This thread lets go of the port: outstanding I/O is cancelled and reaped here, on the thread
   * the ring is bound to, so that close later frees nothing the kernel still uses. */
  if (atomic_load_explicit(&p->owner, memory_order_acquire) == mior__thread_self())
    mior__port_shutdown(p);
  atomic_store_explicit(&p->thread_running, 0, memory_order_release);
}

int mior_transport_open(mior_transport **out, const char *endpoint, const mior_options *user_opts,
                        const mior_receiver *receiver) {
  if (!out) return mior__fail(-EINVAL, "mior_transport_open: NULL out");
  *out = NULL;
  if (!endpoint) return mior__fail(-EINVAL, "mior_transport_open: NULL endpoint");
  mior__clear_error();
  struct mior_transport *t = calloc(1, sizeof *t);
  if (!t) return mior__fail(-ENOMEM, "out of memory");
  int rc = mior__endpoint_parse(&t->ep, endpoint);
  if (rc < 0) goto fail;
  /* A host name in the endpoint: resolved here, once (numeric addresses never ask). */
  if (t->ep.host[0] && (rc = mior__socket_resolve(t->ep.host, &t->ep.addr)) < 0) goto fail;
  rc = options_resolve(&t->opts, user_opts, &t->ep);
  if (rc < 0) goto fail;
  if (t->opts.peer) {
    char host[256];
    rc = mior__addr_parse_or_name(&t->peer, t->opts.peer, host, sizeof host);
    if (rc == 0 && host[0]) rc = mior__socket_resolve(host, &t->peer);
    if (rc < 0) {
      char why[160];
      snprintf(why, sizeof why, "%s", mior_last_error()); /* the detail is rewritten below */
      rc = mior__fail(-EINVAL, "peer '%s': not an address or a host that resolves (expected "
                      "ADDR:PORT, [ADDR6]:PORT or NAME:PORT): %s", t->opts.peer, why);
      goto fail;
    }
    if (t->ep.kind == MIOR__KIND_PACKET) {
      rc = mior__fail(-EINVAL, "peer: a packet:// endpoint sends whole frames and takes no peer");
      goto fail;
    }
    if (t->ep.kind == MIOR__KIND_UDP && t->peer.port == 0) {
      rc = mior__fail(-EINVAL, "peer '%s': a UDP peer needs a port", t->opts.peer);
      goto fail;
    }
    t->opts.peer = NULL; /* the caller's string need not outlive this call */
    t->has_peer = 1;
  }

  const mior__backend_ops *ops = NULL;
  uint32_t extra = 0;
  char reason[sizeof ((mior_port_stats *)0)->fallback_reason];
  rc = choose_backend(&t->opts, &ops, &extra, reason, sizeof reason);
  if (rc < 0) goto fail;
  rc = slots_resolve(&t->opts, user_opts, &t->ep, ops);
  if (rc < 0) goto fail;

  t->queues = t->opts.queues;
  t->ports = calloc(t->queues, sizeof *t->ports);
  if (!t->ports) {
    rc = mior__fail(-ENOMEM, "out of memory");
    goto fail;
  }
  uint16_t group_id = 0; /* packet: written by queue 0's backend, read by the later queues' */
  mior__io_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.ep = &t->ep;
  cfg.opts = &t->opts;
  cfg.queues = t->queues;
  cfg.group_id = &group_id;
  cfg.peer = t->has_peer ? &t->peer : NULL;
  for (uint32_t i = 0; i < t->queues; i++) {
    cfg.queue = i;
    rc = mior__port_open(&t->ports[i], t, i, ops, &cfg);
    if (rc == -EOPNOTSUPP && i == 0 && t->opts.backend == MIOR_BACKEND_AUTO) {
      /* AUTO: a backend that can run here may still refuse this socket at open (IoRing: a READ
       * the system refuses on it, or an unconnected UDP socket); the next one takes it, and the
       * refusal becomes the fallback reason. */
      const mior__backend_ops *next = next_supported(ops);
      if (next) {
        if (!reason[0]) {
          const char *err = mior_last_error();
          size_t nl = strlen(ops->name);
          if (strncmp(err, ops->name, nl) == 0 && strncmp(err + nl, ": ", 2) == 0) err += nl + 2;
          snprintf(reason, sizeof reason, "%s: %s", ops->name, err);
          extra = MIOR_FEAT_FALLBACK;
        }
        ops = next;
        mior__clear_error();
        rc = slots_resolve(&t->opts, user_opts, &t->ep, ops);
        if (rc == 0) rc = mior__port_open(&t->ports[i], t, i, ops, &cfg);
      }
    }
    if (rc < 0) goto fail;
    t->ports[i]->stats.features |= extra;
    memcpy(t->ports[i]->stats.fallback_reason, reason, sizeof reason);
    if (receiver) t->ports[i]->receiver = *receiver;
    if (i == 0 && t->ep.kind == MIOR__KIND_UDP) {
      /* The other queues join queue 0's port in one SO_REUSEPORT group. */
      mior_addr local;
      if (mior_port_local_addr(t->ports[0], &local) == 0) cfg.bound_port = local.port;
    }
  }
  *out = t;
  return 0;

fail:
  if (t->ports)
    for (uint32_t i = 0; i < t->queues; i++) mior__port_close(t->ports[i], 0);
  free(t->ports);
  free(t);
  return rc;
}

int mior_transport_start(mior_transport *t) {
  if (!t) return mior__fail(-EINVAL, "mior_transport_start: NULL transport");
  if (t->started) return mior__fail(-EALREADY, "transport already started");
  /* A port driven by a live thread stays with it; a ring bound to one thread for good (io_uring
   * SINGLE_ISSUER, not SQPOLL) cannot be driven by a new one. */
  for (uint32_t i = 0; i < t->queues; i++) {
    struct mior_port *p = t->ports[i];
    uint64_t own = atomic_load(&p->owner);
    if (own == MIOR__OWNER_NONE) continue;
    /* The thread that drove a port by hand may hand it to the transport's thread by starting it. */
    if (own != mior__thread_self() && mior__thread_ref_alive(&p->owner_ref, 100))
      return mior__fail(-EBUSY, "port %u is driven by another thread that is still running; only "
                        "that thread may start the transport", i);
    if ((p->stats.features & MIOR_FEAT_SINGLE_ISSUER) && !(p->stats.features & MIOR_FEAT_SQPOLL))
      return mior__fail(-EBUSY, "port %u's ring is bound to the thread that drove it before; a "
                        "transport whose ports were already driven cannot be started (again)", i);
  }
  /* Reserve every port for its thread before any starts, so that no other thread can bind one
   * in between (a mior_tx_* from main right after start gets -EBUSY, not the port). */
  for (uint32_t i = 0; i < t->queues; i++) {
    struct mior_port *p = t->ports[i];
    atomic_store(&p->owner, MIOR__OWNER_RESERVED);
    atomic_store(&p->stop, 0);
    atomic_store(&p->thread_rc, 0);
    atomic_store(&p->thread_running, 1);
  }
  for (uint32_t i = 0; i < t->queues; i++) {
    struct mior_port *p = t->ports[i];
    int cpu = t->opts.cpu >= 0 ? t->opts.cpu + (int)i : -1;
    int rc = mior__thread_start(&p->thread, port_thread, p, cpu);
    if (rc < 0) {
      for (uint32_t j = i; j < t->queues; j++) {
        atomic_store(&t->ports[j]->thread_running, 0);
        atomic_store(&t->ports[j]->owner, MIOR__OWNER_NONE);
      }
      t->started = 1;
      mior_transport_stop(t);
      return rc;
    }
  }
  t->started = 1;
  return 0;
}

int mior_transport_stop(mior_transport *t) {
  if (!t) return mior__fail(-EINVAL, "mior_transport_stop: NULL transport");
  if (!t->started) return 0;
  for (uint32_t i = 0; i < t->queues; i++)
    if (t->ports[i]->thread && t->ports[i]->owner == mior__thread_self())
      return mior__fail(-EDEADLK, "mior_transport_stop/close called from port %u's own thread "
                        "(inside a receiver callback): call it from another thread", i);
  int first_rc = 0;
  for (uint32_t i = 0; i < t->queues; i++)
    if (t->ports[i]->thread) atomic_store_explicit(&t->ports[i]->stop, 1, memory_order_release);
  for (uint32_t i = 0; i < t->queues; i++) {
    struct mior_port *p = t->ports[i];
    if (!p->thread) continue;
    mior__thread_join(p->thread);
    p->thread = NULL;
    int rc = atomic_load(&p->thread_rc);
    if (rc < 0 && first_rc == 0) first_rc = rc;
  }
  t->started = 0;
  return first_rc;
}

int mior_transport_close(mior_transport *t) {
  if (!t) return 0;
  /* Refuse before anything is stopped or freed when a port is driven by a live thread other than
   * this one (the transport's own threads are stopped below). */
  if (!t->started)
    for (uint32_t i = 0; i < t->queues; i++) {
      int rc = mior__port_may_close(t->ports[i]);
      if (rc < 0) return rc;
    }
  int rc = mior_transport_stop(t);
  if (rc == -EDEADLK) return rc;
  /* Packets the application still holds point into the pools: refuse, as mior_pool_close does,
   * and let the caller release them and close again. */
  uint32_t held = 0;
  for (uint32_t i = 0; i < t->queues; i++) held += mior__port_user_held(t->ports[i]);
  if (held)
    return mior__fail(-EBUSY, "%u packet(s) are still held by the application (kept or acquired): "
                      "release them and close again; the transport is stopped, nothing was freed",
                      held);
  uint32_t left[MIOR_MAX_QUEUES];
  for (uint32_t i = 0; i < t->queues; i++) left[i] = mior__port_shutdown(t->ports[i]);
  /* Shutting down delivers what had already arrived, and the receiver may have kept some. */
  for (uint32_t i = 0; i < t->queues; i++) held += mior__port_user_held(t->ports[i]);
  if (held)
    return mior__fail(-EBUSY, "%u packet(s) kept by the receiver while the transport closed: "
                      "release them and close again; nothing was freed", held);
  rc = 0;
  for (uint32_t i = 0; i < t->queues; i++) {
    int prc = mior__port_close(t->ports[i], left[i]);
    if (prc < 0 && rc == 0) rc = prc;
  }
  free(t->ports);
  free(t);
  return rc;
}

uint32_t mior_transport_queues(const mior_transport *t) {
  return t ? t->queues : 0;
}

mior_port *mior_transport_port(const mior_transport *t, uint32_t i) {
  return t && i < t->queues ? t->ports[i] : NULL;
}

int mior_transport_stats_get(const mior_transport *t, mior_port_stats *out) {
  if (!t || !out) return mior__fail(-EINVAL, "mior_transport_stats_get: NULL argument");
  memset(out, 0, sizeof *out);
  for (uint32_t i = 0; i < t->queues; i++) {
    mior_port_stats s;
    mior_port_stats_get(t->ports[i], &s);
    if (i == 0) {
      *out = s;
      continue;
    }
    out->rx_packets += s.rx_packets;
    out->rx_bytes += s.rx_bytes;
    out->tx_packets += s.tx_packets;
    out->tx_bytes += s.tx_bytes;
    out->rx_nobufs += s.rx_nobufs;
    out->rx_drop_truncated += s.rx_drop_truncated;
    out->rx_drop_kernel += s.rx_drop_kernel;
    out->rx_errors += s.rx_errors;
    out->rx_rearm += s.rx_rearm;
    out->rx_kept += s.rx_kept;
    out->tx_errors += s.tx_errors;
    out->tx_invalid += s.tx_invalid;
    out->tx_short += s.tx_short;
    out->tx_backpressure += s.tx_backpressure;
    out->conn_refused += s.conn_refused;
    out->cq_overflow += s.cq_overflow;
    out->submits += s.submits;
    out->completions += s.completions;
    out->pool_in_use += s.pool_in_use;
    out->pool_high_water += s.pool_high_water;
    out->user_held += s.user_held;
    out->tx_in_flight += s.tx_in_flight;
    out->rx_coalesced += s.rx_coalesced;
    out->tx_gso_sends += s.tx_gso_sends;
    out->offload_refused += s.offload_refused;
    out->thread_running += s.thread_running;
    if (out->thread_error == 0) out->thread_error = s.thread_error;
  }
  return 0;
}
