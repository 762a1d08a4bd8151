/* mior-perf throughput: one sender thread sends as fast as it can (or at --rate), one receiver
 * thread counts what arrives, checks the sequence numbers and rejects foreign packets.
 *
 * Measurement: the sender and receiver publish running counts; the main thread reads them after
 * a warm-up and again after --seconds, with the clock read at both points, so start-up and the
 * final drain are outside the figures.  Loss is counted over the whole run: packets the sender
 * queued that never arrived, once the receiver has drained.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testpkt.h"
#include "perf.h"

/* Sequence tracking per flow: a bitmap over the last SEQ_WINDOW sequence numbers tells a
 * duplicate from a late (reordered) packet. */
#define SEQ_WINDOW 65536u

typedef struct seq_track {
  uint64_t next;   /* highest sequence seen + 1 */
  uint64_t unique, duplicates, reordered;
  uint8_t seen[SEQ_WINDOW / 8];
} seq_track;

typedef struct rx_side {
  perf_run *run;
  perf_error err;
  perf_latch ready, done;
  atomic_int stop;
  perf_thread *thread;
  mior_addr addr; /* where the sender sends (port 0's local address) */
  seq_track *flows; /* PERF_MAX_FLOWS, touched only by the receiver thread */
  uint64_t received, foreign;
  _Atomic uint64_t pub_received; /* published once per batch for the main thread */
  mior_port_stats stats;
  double cpu_s;
} rx_side;

typedef struct tx_side {
  perf_run *run;
  perf_error err;
  perf_latch ready, go;
  atomic_int stop;
  perf_thread *thread;
  char peer[64];  /* udp: the receiver's address, as text for mior_options.peer */
  uint64_t sent[PERF_MAX_FLOWS];
  uint64_t total;
  _Atomic uint64_t pub_sent;
  mior_port_stats stats;
  double cpu_s;
} tx_side;

static inline int bit_get(const uint8_t *b, uint64_t i) {
  i %= SEQ_WINDOW;
  return (b[i >> 3] >> (i & 7)) & 1;
}
static inline void bit_put(uint8_t *b, uint64_t i, int v) {
  i %= SEQ_WINDOW;
  if (v)
    b[i >> 3] |= (uint8_t)(1u << (i & 7));
  else
    b[i >> 3] &= (uint8_t) ~(1u << (i & 7));
}

static void seq_track_add(seq_track *f, uint64_t seq) {
  if (seq >= f->next) {
    /* Positions between the old head and seq are reused from SEQ_WINDOW ago: clear them. */
    if (seq - f->next >= SEQ_WINDOW)
      memset(f->seen, 0, sizeof f->seen);
    else
      for (uint64_t s = f->next; s < seq; s++) bit_put(f->seen, s, 0);
    bit_put(f->seen, seq, 1);
    f->next = seq + 1;
    f->unique++;
  } else if (f->next - seq > SEQ_WINDOW) {
    f->reordered++; /* too old to tell a duplicate from a late arrival: count it late */
    f->unique++;
  } else if (bit_get(f->seen, seq)) {
    f->duplicates++;
  } else {
    bit_put(f->seen, seq, 1);
    f->reordered++;
    f->unique++;
  }
}

static int rx_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  rx_side *rx = ctx;
  const perf_run *run = rx->run;
  perf_hdr h;
  if (perf_frame_parse(run->cfg->kind, pkt->data, pkt->len, &h) < 0 || h.run_id != run->run_id ||
      h.type != PERF_TYPE_DATA || h.flow >= PERF_MAX_FLOWS) {
    rx->foreign++;
    return MIOR_DONE;
  }
  rx->received++;
  seq_track_add(&rx->flows[h.flow], h.seq);
  return MIOR_DONE;
}

static void rx_flush(void *ctx, mior_port *port) {
  rx_side *rx = ctx;
  atomic_store_explicit(&rx->pub_received, rx->received, memory_order_relaxed);
}

static void *rx_main(void *arg) {
  rx_side *rx = arg;
  perf_run *run = rx->run;
  const perf_config *cfg = run->cfg;
  mior_transport *t = NULL;
  char ep[96];
  int rc;

  if (perf_thread_setup(run->env->cpu_rx, run->env->netns_fd_rx, &rx->err) < 0) goto out;
  perf_endpoint(run, 0, ep, sizeof ep);
  mior_options opts;
  perf_options(run, &opts);
  opts.queues = cfg->kind == PERF_KIND_IP ? 1 : cfg->queues;
  if (run->connected) opts.peer = run->peer_of_rx; /* IoRing: see perf_run.connected */
  mior_receiver recv = {rx_consume, rx_flush, rx};
  mior_pcap_tap tap;
  perf_receiver_tap(run, &tap, &recv);
  rc = mior_transport_open(&t, ep, &opts, &recv);
  if (rc < 0) {
    perf_error_set(&rx->err, rc, "opening the receiver");
    goto out;
  }
  uint32_t nports = mior_transport_queues(t);
  if (cfg->kind == PERF_KIND_UDP) {
    rc = mior_port_local_addr(mior_transport_port(t, 0), &rx->addr);
    if (rc < 0) {
      perf_error_set(&rx->err, rc, "reading the receiver's address");
      goto out;
    }
  }
  perf_latch_set(&rx->ready);

  /* One thread drives every queue: wait on the only port, or sweep them all without waiting and
   * wait briefly on one in turn when a sweep found nothing. */
  uint32_t turn = 0;
  rc = 0;
  while (!atomic_load_explicit(&rx->stop, memory_order_relaxed) && !perf_stopping(run)) {
    int got = 0;
    for (uint32_t i = 0; i < nports && rc >= 0; i++) {
      rc = mior_port_poll(mior_transport_port(t, i), 0, nports == 1 ? 100000 : 0);
      got += rc > 0 ? rc : 0;
    }
    if (rc >= 0 && nports > 1 && !got) rc = mior_port_poll(mior_transport_port(t, turn++ % nports), 0, 1000);
    if (rc < 0 && rc != -EINTR) {
      perf_error_set(&rx->err, rc, "polling the receiver");
      break;
    }
    rc = 0;
  }
  mior_transport_stats_get(t, &rx->stats);
out:
  if (t) {
    rc = mior_transport_close(t);
    if (rc < 0) perf_error_set(&rx->err, rc, "closing the receiver");
  }
  if (rx->err.err) atomic_store(&run->stop, 1);
  rx->cpu_s = perf_thread_cpu_s();
  perf_latch_set(&rx->ready);
  perf_latch_set(&rx->done);
  return NULL;
}

/* Token bucket for --rate: up to `batch` packets of burst.  Returns 1 when a packet may go. */
typedef struct bucket {
  double tokens, per_ns, burst;
  uint64_t last;
} bucket;

/* The pacer's shortest sleep: at 100k pps a batch of about 20 packets per wake-up. */
#define PACE_MIN_SLEEP_NS 200000u

static int bucket_take(bucket *b) {
  uint64_t now = perf_now_ns();
  b->tokens += (double)(now - b->last) * b->per_ns;
  b->last = now;
  if (b->tokens > b->burst) b->tokens = b->burst;
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    return 1;
  }
  return 0;
}

/* --gso-slot: 64 KiB slots, and fewer of them than the send-only default (4096) so the pool stays
 * at 16 MiB. */
#define GSO_SLOT_SIZE 65536u
#define GSO_SLOT_COUNT 256u

/* Take a slot: 1, 0 when none is free (backpressure), or a negative errno (set in tx->err). */
static int take_slot(tx_side *tx, mior_port *port, mior_pkt *pkt) {
  int rc = mior_tx_acquire(port, pkt);
  if (rc == -EAGAIN) return 0;
  if (rc < 0) perf_error_set(&tx->err, rc, "acquiring a transmit slot");
  return rc < 0 ? rc : 1;
}

/* One datagram of flow f in a slot of its own (the default).  Returns 1 when sent, 0 when no slot
 * was free, or a negative errno (tx->err set if it is the acquire's, else the send's). */
static int send_one(tx_side *tx, mior_port *port, perf_frame *frame, uint32_t f, perf_hdr *h) {
  mior_pkt pkt;
  int rc = take_slot(tx, port, &pkt);
  if (rc <= 0) return rc;
  h->flow = (uint8_t)f;
  h->seq = tx->sent[f];
  rc = mior_tx_send(port, &pkt, perf_frame_write(frame, pkt.data, h), NULL);
  return rc < 0 ? rc : 1;
}

/* --gso-slot: up to `want` datagrams of flow f back to back in one slot (the first granted by the
 * pacer already, the others each taking a token when pacing), sent with mior_tx_send_gso.
 * Returns the datagrams sent, or as send_one. */
static int send_gso_slot(tx_side *tx, mior_port *port, perf_frame *frame, uint32_t f, uint32_t want,
                         bucket *b, perf_hdr *h) {
  mior_pkt pkt;
  int rc = take_slot(tx, port, &pkt);
  if (rc <= 0) return rc;
  uint32_t n = 0, off = 0, seg = 0;
  while (n < want && (n == 0 || !tx->run->cfg->rate || bucket_take(b))) {
    h->flow = (uint8_t)f;
    h->seq = tx->sent[f] + n;
    seg = perf_frame_write(frame, pkt.data + off, h);
    off += seg;
    n++;
    if (off + seg > pkt.cap) break; /* the next one would not fit */
  }
  rc = mior_tx_send_gso(port, &pkt, off, seg, NULL);
  return rc < 0 ? rc : (int)n;
}

static void *tx_main(void *arg) {
  tx_side *tx = arg;
  perf_run *run = tx->run;
  const perf_config *cfg = run->cfg;
  const perf_env *env = run->env;
  mior_transport *ts[PERF_MAX_FLOWS] = {0};
  mior_port *ports[PERF_MAX_FLOWS] = {0};
  perf_frame frames[PERF_MAX_FLOWS];
  uint32_t nflows = cfg->queues, ntrans = cfg->kind == PERF_KIND_UDP ? nflows : 1;
  char ep[96];
  int rc;

  if (perf_thread_setup(env->cpu_tx, env->netns_fd_tx, &tx->err) < 0) goto out;
  perf_endpoint(run, 1, ep, sizeof ep);
  mior_options opts;
  perf_options(run, &opts);
  if (cfg->gso) opts.flags |= MIOR_OPT_UDP_GSO;
  if (cfg->gso_slot) {
    opts.buf_size = GSO_SLOT_SIZE;
    if (!opts.buf_count) opts.buf_count = GSO_SLOT_COUNT;
  }
  opts.flags |= MIOR_OPT_NO_RX; /* a sender only: also keeps a packet socket from reading back
                                   its own outgoing frames */
  if (cfg->kind == PERF_KIND_UDP) opts.peer = tx->peer;
  if (cfg->kind == PERF_KIND_IP) opts.peer = env->ip_rx;
  /* udp: one transport (so one source port) per flow, so SO_REUSEPORT can spread the flows over
   * the receiver's queues; ip and packet: one transport, flows differ by UDP source port. */
  for (uint32_t i = 0; i < ntrans; i++) {
    rc = mior_transport_open(&ts[i], ep, &opts, NULL);
    if (rc < 0) {
      perf_error_set(&tx->err, rc, "opening the sender");
      goto out;
    }
  }
  for (uint32_t f = 0; f < nflows; f++) {
    ports[f] = mior_transport_port(ts[cfg->kind == PERF_KIND_UDP ? f : 0], 0);
    rc = perf_frame_init(&frames[f], cfg->kind, cfg->size, env->ip_tx, env->ip_rx, env->mac_tx,
                         perf_other_mac, (uint16_t)(PERF_SPORT_BASE + f), PERF_DPORT);
    if (rc < 0) {
      perf_error_set(&tx->err, rc, "building the packet headers");
      goto out;
    }
  }
  perf_latch_set(&tx->ready);
  if (!perf_latch_wait(&tx->go, run, 60)) goto close;

  uint32_t batch = opts.batch ? opts.batch : 64;
  bucket b = {0};
  if (cfg->rate) {
    b.per_ns = (double)cfg->rate / 1e9;
    /* Up to 10 ms of burst, so a short stall of this thread (another task on its CPU) does not
     * cost packets the rate had granted. */
    b.burst = (double)cfg->rate / 100 > batch ? (double)cfg->rate / 100 : batch;
    b.last = perf_now_ns();
  }
  perf_hdr h = {PERF_MAGIC, PERF_TYPE_DATA, 0, run->run_id, 0};
  uint32_t f = 0, in_batch = 0;
  uint64_t send_errors = 0;
  while (!atomic_load_explicit(&tx->stop, memory_order_relaxed) && !perf_stopping(run)) {
    mior_port *port = ports[f];
    if (cfg->rate && !bucket_take(&b)) {
      mior_tx_flush(port);
      /* Sleep until a token is due, and never less than PACE_MIN_SLEEP_NS: the bucket grants
       * what accrued meanwhile and it leaves as one batch.  Spinning through short gaps would
       * make a fixed-rate run measure the spin loop rather than the packets' cost, which is
       * what its CPU figure is for; sleeping per packet would measure timer wake-ups
       * (bench/baselines/bl.c paces the same way). */
      double wait_ns = (1.0 - b.tokens) / b.per_ns;
      perf_sleep_ns(wait_ns > PACE_MIN_SLEEP_NS ? (uint64_t)wait_ns : PACE_MIN_SLEEP_NS);
      mior_port_poll(port, 0, 0);
      continue;
    }
    int sent = cfg->gso_slot ? send_gso_slot(tx, port, &frames[f], f, batch < 64 ? batch : 64, &b, &h)
                             : send_one(tx, port, &frames[f], f, &h);
    if (sent == 0) {
      /* Backpressure: every slot is in flight.  Wait for completions to return some. */
      rc = mior_port_poll(port, 0, 1000);
      if (rc < 0 && rc != -EINTR) {
        perf_error_set(&tx->err, rc, "polling the sender");
        break;
      }
      continue;
    }
    if (sent < 0) {
      if (tx->err.err) break; /* the acquire failed */
      /* A refused send is counted, not fatal (the receiver may be slow to come up); a send
       * that never works is. */
      if (++send_errors > 100000 && tx->total == 0) {
        perf_error_set(&tx->err, sent, "sending");
        break;
      }
      continue;
    }
    tx->sent[f] += (uint32_t)sent;
    tx->total += (uint32_t)sent;
    in_batch += (uint32_t)sent;
    if (in_batch >= batch) {
      in_batch = 0;
      atomic_store_explicit(&tx->pub_sent, tx->total, memory_order_relaxed);
      /* Reap completions now and then so slots come back before the pool runs dry. */
      mior_port_poll(port, 0, 0);
      f = (f + 1) % nflows;
    }
  }
  atomic_store_explicit(&tx->pub_sent, tx->total, memory_order_relaxed);

  /* Drain: push out what is queued and wait (briefly) for the send completions. */
  uint64_t end = perf_now_ns() + 300000000u;
  for (uint32_t i = 0; i < ntrans; i++) {
    mior_port *p = mior_transport_port(ts[i], 0);
    mior_tx_flush(p);
    while (perf_now_ns() < end) {
      mior_port_stats st;
      mior_port_stats_get(p, &st);
      if (st.tx_in_flight == 0) break;
      mior_port_poll(p, 0, 1000);
    }
  }
close:
  memset(&tx->stats, 0, sizeof tx->stats);
  for (uint32_t i = 0; i < ntrans; i++) {
    mior_port_stats st;
    if (mior_transport_stats_get(ts[i], &st) < 0) continue;
    if (i == 0) {
      tx->stats = st;
      continue;
    }
    tx->stats.tx_packets += st.tx_packets;
    tx->stats.tx_bytes += st.tx_bytes;
    tx->stats.tx_errors += st.tx_errors;
    tx->stats.tx_invalid += st.tx_invalid;
    tx->stats.tx_short += st.tx_short;
    tx->stats.tx_backpressure += st.tx_backpressure;
    tx->stats.conn_refused += st.conn_refused;
    tx->stats.cq_overflow += st.cq_overflow;
    tx->stats.submits += st.submits;
    tx->stats.completions += st.completions;
  }
out:
  for (uint32_t i = 0; i < ntrans; i++) {
    if (!ts[i]) continue;
    rc = mior_transport_close(ts[i]);
    if (rc < 0) perf_error_set(&tx->err, rc, "closing the sender");
  }
  if (tx->err.err) atomic_store(&run->stop, 1);
  tx->cpu_s = perf_thread_cpu_s();
  perf_latch_set(&tx->ready);
  return NULL;
}

typedef struct snap {
  uint64_t t, tx, rx;
} snap;

static snap take(const tx_side *tx, const rx_side *rx) {
  snap s;
  s.t = perf_now_ns();
  s.tx = atomic_load_explicit(&tx->pub_sent, memory_order_relaxed);
  s.rx = atomic_load_explicit(&rx->pub_received, memory_order_relaxed);
  return s;
}

/* Sleep until `until`, printing the progress line each second. */
static void run_phase(perf_run *run, const tx_side *tx, const rx_side *rx, const char *phase,
                      uint64_t t0, uint64_t until, snap *last) {
  while (!perf_stopping(run)) {
    uint64_t now = perf_now_ns();
    if (now >= until) break;
    uint64_t next = last->t + 1000000000u;
    perf_sleep_ns((next < until ? next : until) - now);
    if (perf_now_ns() >= next) {
      snap s = take(tx, rx);
      double dt = (double)(s.t - last->t) / 1e9;
      double txp = (double)(s.tx - last->tx) / dt, rxp = (double)(s.rx - last->rx) / dt;
      perf_progress(run, phase, (double)(s.t - t0) / 1e9, "tx %9.0f pps  rx %9.0f pps  %8.1f Mbit/s",
                    txp, rxp, rxp * run->cfg->size * 8 / 1e6);
      *last = s;
    }
  }
}

int perf_throughput(perf_run *run, perf_result *res, perf_error *err) {
  const perf_config *cfg = run->cfg;
  rx_side *rx = calloc(1, sizeof *rx);
  tx_side *tx = calloc(1, sizeof *tx);
  int rx_started = 0, tx_started = 0;
  if (!rx || !tx || !(rx->flows = calloc(PERF_MAX_FLOWS, sizeof *rx->flows))) {
    perf_error_set(err, -ENOMEM, "allocating the run");
    goto out;
  }
  rx->run = tx->run = run;

  if (perf_thread_start(&rx->thread, rx_main, rx) < 0) {
    perf_error_set(err, -EAGAIN, "starting the receiver thread");
    goto out;
  }
  rx_started = 1;
  if (!perf_latch_wait(&rx->ready, run, 30) || rx->err.err) goto out;
  if (cfg->kind == PERF_KIND_UDP) mior_addr_format(&rx->addr, tx->peer, sizeof tx->peer);

  if (perf_thread_start(&tx->thread, tx_main, tx) < 0) {
    perf_error_set(err, -EAGAIN, "starting the sender thread");
    goto out;
  }
  tx_started = 1;
  if (!perf_latch_wait(&tx->ready, run, 30) || tx->err.err) goto out;

  uint64_t t0 = perf_now_ns();
  snap last = {t0, 0, 0};
  perf_latch_set(&tx->go);
  run_phase(run, tx, rx, "warm", t0, t0 + (uint64_t)(cfg->warmup * 1e9), &last);
  snap a = take(tx, rx);
  last = a;
  run_phase(run, tx, rx, "run", t0, a.t + (uint64_t)(cfg->seconds * 1e9), &last);
  snap b = take(tx, rx);

  /* Stop the sender, then give the receiver until its count stops moving (at most 1 s). */
  atomic_store(&tx->stop, 1);
  perf_thread_join(tx->thread);
  tx_started = 0;
  uint64_t settle_end = perf_now_ns() + 1000000000u, prev = UINT64_MAX;
  while (!perf_stopping(run) && perf_now_ns() < settle_end) {
    uint64_t cur = atomic_load_explicit(&rx->pub_received, memory_order_relaxed);
    if (cur == prev) break;
    prev = cur;
    perf_sleep_ns(100000000u);
  }
  atomic_store(&rx->stop, 1);
  perf_thread_join(rx->thread);
  rx_started = 0;
  perf_progress_end(run);

  memset(res, 0, sizeof *res);
  res->backend = run->backend;
  res->mode = PERF_MODE_THROUGHPUT;
  res->kind = cfg->kind;
  res->size = cfg->size;
  res->seconds = (double)(b.t - a.t) / 1e9;
  if (res->seconds > 0) {
    res->tx_pps = (double)(b.tx - a.tx) / res->seconds;
    res->rx_pps = (double)(b.rx - a.rx) / res->seconds;
  }
  res->rx_mbps = res->rx_pps * cfg->size * 8 / 1e6;
  res->tx_total = tx->total;
  res->rx_total = rx->received;
  res->foreign = rx->foreign;
  uint64_t unique = 0;
  for (uint32_t f = 0; f < PERF_MAX_FLOWS; f++) {
    unique += rx->flows[f].unique;
    res->duplicates += rx->flows[f].duplicates;
    res->reordered += rx->flows[f].reordered;
  }
  res->lost = tx->total > unique ? tx->total - unique : 0;
  res->loss = tx->total ? 100.0 * (double)res->lost / (double)tx->total : 0;
  res->rx_stats = rx->stats;
  res->tx_stats = tx->stats;
  res->cpu_tx_s = tx->cpu_s;
  res->cpu_rx_s = rx->cpu_s;

out:
  /* On any failure: stop both sides and report the first error. */
  atomic_store(&run->stop, 1);
  if (tx_started) perf_thread_join(tx->thread);
  if (rx_started) perf_thread_join(rx->thread);
  perf_progress_end(run);
  int ret = 0;
  if (err->err)
    ret = err->err;
  else if (rx && rx->err.err)
    *err = rx->err, ret = err->err;
  else if (tx && tx->err.err)
    *err = tx->err, ret = err->err;
  else if (atomic_load(run->interrupted))
    ret = -EINTR, snprintf(err->what, sizeof err->what, "interrupted"), err->err = ret;
  if (rx) free(rx->flows);
  free(rx);
  free(tx);
  return ret;
}
