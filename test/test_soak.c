/* Soak: full-rate UDP over loopback for MIOR_SOAK_SECONDS (default 60, split between the two
 * Linux backends), with random datagram sizes, random flush points, and a receiver that keeps a
 * random share of its packets and has another thread release them later.  Checked end to end:
 *   - every sequence number sent is received exactly once, in order, or is counted as dropped by
 *     a named cause: the kernel's drop counter for the receiving socket (/proc/net/udp, the
 *     receive buffer overflowed) or the port's own drop counters;
 *   - nothing arrives damaged;
 *   - memory stays flat: resident set size sampled from /proc/self/statm each second, no growth
 *     beyond a small allowance after the first quarter of the run;
 *   - the pools return to full: both transports close with 0.
 * Longer runs: MIOR_SOAK_SECONDS=3600 ./test_soak.
 */
#include <stdatomic.h>
#include <sys/socket.h>

#include "transport_common.h"

#define KEEP_MAX 512u

struct keeper {
  pthread_mutex_t mu;
  mior_pkt q[KEEP_MAX];
  uint32_t head, len;
};

struct rx_state {
  atomic_uint_least64_t received, gaps, misordered, damaged, kept, released;
  atomic_uint_least64_t next; /* next sequence number expected */
  uint64_t rng;
  struct keeper k;
  atomic_int stop;
};

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *s = x;
}

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  struct rx_state *s = ctx;
  uint32_t seq;
  if (tt_check(pkt->data, pkt->len, &seq) != 0) {
    atomic_fetch_add(&s->damaged, 1);
    return MIOR_DONE;
  }
  uint64_t next = atomic_load_explicit(&s->next, memory_order_relaxed);
  /* One sender socket, one receiving socket, loopback: order is kept, so a jump is a loss. */
  if (seq < next) atomic_fetch_add(&s->misordered, 1);
  else atomic_fetch_add(&s->gaps, seq - next);
  if (seq >= next) atomic_store_explicit(&s->next, (uint64_t)seq + 1, memory_order_relaxed);
  atomic_fetch_add(&s->received, 1);
  /* Keep about one in eight, for another thread to release later. */
  if ((xorshift(&s->rng) & 7) == 0) {
    pthread_mutex_lock(&s->k.mu);
    int kept = 0;
    if (s->k.len < KEEP_MAX) {
      s->k.q[(s->k.head + s->k.len) % KEEP_MAX] = *pkt;
      s->k.len++;
      kept = 1;
    }
    pthread_mutex_unlock(&s->k.mu);
    if (kept) {
      atomic_fetch_add(&s->kept, 1);
      return MIOR_KEEP;
    }
  }
  return MIOR_DONE;
}

static int release_some(struct rx_state *s, uint32_t max) {
  int n = 0;
  pthread_mutex_lock(&s->k.mu);
  while (s->k.len > 0 && (uint32_t)n < max) {
    mior_pkt p = s->k.q[s->k.head];
    s->k.head = (s->k.head + 1) % KEEP_MAX;
    s->k.len--;
    if (mior_pkt_release(&p) == 0) n++;
  }
  pthread_mutex_unlock(&s->k.mu);
  atomic_fetch_add(&s->released, (uint64_t)n);
  return n;
}

static void *releaser(void *arg) {
  struct rx_state *s = arg;
  uint64_t rng = 0x1234567ull;
  while (!atomic_load(&s->stop)) {
    release_some(s, 1 + (uint32_t)(xorshift(&rng) % 64));
    usleep((useconds_t)(xorshift(&rng) % 500));
  }
  return NULL;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double soak_seconds;

static void body(mior_backend b) {
  struct rx_state *s = calloc(1, sizeof *s);
  REQUIRE(s);
  pthread_mutex_init(&s->k.mu, NULL);
  s->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)b;

  mior_options ro = tt_opts(b);
  ro.buf_size = 2048;
  mior_receiver rcv = {consume, NULL, s};
  mior_transport *rt = NULL, *st = NULL;
  REQUIRE_OK(mior_transport_open(&rt, "udp://127.0.0.1:0", &ro, &rcv));
  mior_addr dst;
  REQUIRE_OK(mior_port_local_addr(mior_transport_port(rt, 0), &dst));
  uint64_t drops0 = tt_udp_kernel_drops(dst.port);
  mior_options so = tt_opts(b);
  so.flags |= MIOR_OPT_NO_RX;
  REQUIRE_OK(mior_transport_open(&st, "udp://127.0.0.1:0", &so, NULL));
  mior_port *tx = mior_transport_port(st, 0);
  REQUIRE_OK(mior_transport_start(rt));
  pthread_t rel;
  REQUIRE(pthread_create(&rel, NULL, releaser, s) == 0);

  uint64_t rng = 0xdeadbeefull + (uint64_t)b, sent = 0, refused = 0, flushes = 0;
  int64_t t0 = tt_now_ms(), end = t0 + (int64_t)(soak_seconds * 1000), next_sample = t0 + 1000;
  long rss_base = 0, rss_max = 0, rss_first = rss_kib();
  while (tt_now_ms() < end) {
    for (int k = 0; k < 256; k++) {
      mior_pkt pkt;
      if (mior_tx_acquire(tx, &pkt) != 0) {
        CHECK(mior_port_poll(tx, 0, 0) >= 0);
        break;
      }
      uint32_t len = TT_HDR + (uint32_t)(xorshift(&rng) % (1472 - TT_HDR + 1));
      tt_fill(pkt.data, len, (uint32_t)sent);
      if (mior_tx_send(tx, &pkt, len, &dst) == 0) sent++;
      else refused++;
      if ((xorshift(&rng) & 31) == 0) {
        CHECK_OK(mior_tx_flush(tx));
        flushes++;
      }
    }
    CHECK(mior_port_poll(tx, 0, 0) >= 0);
    int64_t now = tt_now_ms();
    if (now >= next_sample) {
      next_sample = now + 1000;
      long r = rss_kib();
      /* After the first quarter the pools and caches are warm: from there on, flat. */
      if (now - t0 >= (end - t0) / 4) {
        if (!rss_base) rss_base = r;
        if (r > rss_max) rss_max = r;
      }
    }
    if (sent >= 0xfffffff0u) break; /* sequence numbers are 32-bit */
  }
  /* Let everything in flight land: flush, then wait until the receiver goes quiet. */
  CHECK_OK(mior_tx_flush(tx));
  for (int i = 0; i < 2000; i++) {
    mior_port_stats ss;
    CHECK(mior_port_poll(tx, 0, 1000) >= 0);
    REQUIRE_OK(mior_port_stats_get(tx, &ss));
    if (ss.tx_in_flight == 0) break;
  }
  /* Wait until every datagram is either received or counted by the kernel as dropped.  Waiting
   * for the receiver to go quiet for a moment is not enough on a loaded machine: a receiving
   * thread starved for 50 ms left datagrams in the socket, lost to the test but named by nothing.
   * Bounded (20 s); anything still missing then is reported by the checks below. */
  for (int i = 0; i < 400; i++) {
    uint64_t r = atomic_load(&s->received);
    uint64_t k = tt_udp_kernel_drops(dst.port) - drops0;
    if (r + k >= sent) break;
    usleep(50000);
  }
  atomic_store(&s->stop, 1);
  pthread_join(rel, NULL);
  CHECK_OK(mior_transport_stop(rt));
  release_some(s, KEEP_MAX);

  mior_port_stats rs, ts;
  REQUIRE_OK(mior_transport_stats_get(rt, &rs));
  REQUIRE_OK(mior_transport_stats_get(st, &ts));
  uint64_t kdrops = tt_udp_kernel_drops(dst.port) - drops0;
  uint64_t received = atomic_load(&s->received), gaps = atomic_load(&s->gaps);
  uint64_t tail = sent - atomic_load(&s->next); /* lost at the very end: no later seq showed it */
  uint64_t lost = gaps + tail;
  uint64_t named = kdrops + rs.rx_nobufs + rs.rx_drop_truncated + rs.rx_errors;
  double secs = (tt_now_ms() - t0) / 1000.0;
  printf("    [%s] %.1f s: sent %llu (%.0f/s), received %llu, lost %llu (kernel drops %llu, port drops "
         "%llu), kept %llu released %llu, flushes %llu, refused %llu, tx_errors %llu; RSS start %ld "
         "KiB, warm %ld KiB, max %ld KiB\n",
         mior_backend_name(b), secs, (unsigned long long)sent, sent / secs,
         (unsigned long long)received, (unsigned long long)lost, (unsigned long long)kdrops,
         (unsigned long long)(rs.rx_nobufs + rs.rx_drop_truncated + rs.rx_errors),
         (unsigned long long)atomic_load(&s->kept), (unsigned long long)atomic_load(&s->released),
         (unsigned long long)flushes, (unsigned long long)refused,
         (unsigned long long)ts.tx_errors, rss_first, rss_base, rss_max);
  CHECK(sent > 0);
  CHECK_EQ(refused, 0);
  CHECK_EQ(atomic_load(&s->damaged), 0);
  CHECK_EQ(atomic_load(&s->misordered), 0);
  CHECK_EQ(received + lost, sent);
  /* Every loss has a named cause. */
  CHECK_EQ(lost, named);
  CHECK_EQ(ts.tx_packets, sent);
  CHECK_EQ(atomic_load(&s->kept), atomic_load(&s->released));
  /* Flat memory: at most 4 MiB of growth after warm-up (allocator noise; a leak per packet at
   * these rates would be hundreds of MiB). */
  if (rss_base) CHECK(rss_max - rss_base < 4096);
  CHECK_OK(mior_transport_close(rt));
  CHECK_OK(mior_transport_close(st));
  pthread_mutex_destroy(&s->k.mu);
  free(s);
}

int main(void) {
  const char *env = getenv("MIOR_SOAK_SECONDS");
  double total = env && *env ? atof(env) : 60.0;
  if (total <= 0) TEST_SKIP("MIOR_SOAK_SECONDS=%s", env);
  int nb = 0;
  for (const mior__backend_ops *const *ops = mior__backends; *ops; ops++)
    nb += mior_backend_supported((*ops)->id) == 1;
  if (nb == 0) TEST_SKIP("no backend can run here");
  soak_seconds = total / nb;
  tt_watchdog((unsigned)(total + 60 * nb));
  tt_for_each_backend("soak", body);
  TEST_DONE();
}
