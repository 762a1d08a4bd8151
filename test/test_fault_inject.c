/* Fault injection under both Linux backends (test/support/fault.h): submissions that fail, receive
 * completions that come back as errors, failed and short sends, a full submission queue, and a
 * socket that dies mid-run.  For each, on a real UDP socket over loopback:
 *   - the port keeps working (transient faults) or fails with a clear error (a dead socket);
 *   - every sequence number queued is received, or lost to an injected receive error (counted by
 *     the injector and by the port's stats under its name), or dropped by the kernel at the socket
 *     (its drop counter in /proc/net/udp); never received twice, never damaged;
 *   - every slot comes back: mior_transport_close returns 0.
 * The port sends to itself (its own address), so one hand-driven loop exercises both directions.
 */
#include <sys/socket.h>

#include "support/fault.h"
#include "common/port.h"
#include "transport_common.h"

#define N_PKTS 3000u
#define WINDOW 48u /* below the batch (64): mior_tx_send never flushes by itself, so its result
                      says exactly whether the packet was queued */

/* The socket the port owns: the one bound to its local port (for "the socket dies"). */
static int find_socket_fd(uint16_t port) {
  for (int fd = 3; fd < 1024; fd++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET) continue;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) continue;
    if (ntohs(((struct sockaddr_in *)&ss)->sin_port) == port) return fd;
  }
  return -1;
}

struct run {
  uint8_t seen[N_PKTS];
  uint32_t received, damaged, dup;
  uint16_t lport;
  int shut_fd;
};

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  struct run *r = ctx;
  uint32_t seq;
  int c = tt_check(pkt->data, pkt->len, &seq);
  if (c != 0 || seq >= N_PKTS) {
    r->damaged++;
    return MIOR_DONE;
  }
  if (r->seen[seq]) r->dup++;
  r->seen[seq] = 1;
  r->received++;
  return MIOR_DONE;
}

static void die_by_shutdown(void *ctx, mior_port *port) {
  (void)port;
  struct run *r = ctx;
  r->shut_fd = find_socket_fd(r->lport);
  if (r->shut_fd >= 0) shutdown(r->shut_fd, SHUT_RDWR);
}

typedef struct fault_case {
  const char *name;
  mior__fault_plan plan;
  int dies;        /* the run is expected to end with an error */
} fault_case;

static const fault_case *cur;
static uint32_t cur_flags;

static void run_case(mior_backend b) {
  const fault_case *fc = cur;
  struct run *r = calloc(1, sizeof *r);
  REQUIRE(r);
  r->shut_fd = -1;
  mior_options o = tt_opts(b);
  o.buf_count = 512;
  o.rx_depth = 256;
  o.batch = 64;
  o.flags |= cur_flags;
  mior_receiver rcv = {consume, NULL, r};
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_port *port = mior_transport_port(t, 0);
  mior_addr self;
  REQUIRE_OK(mior_port_local_addr(port, &self));
  r->lport = self.port;
  mior__fault_plan plan = fc->plan;
  if (plan.die) plan.die_ctx = r;
  REQUIRE_OK(mior__fault_install(port, &plan));
  CHECK_ERR(mior__fault_install(port, &plan), -EINVAL); /* twice is refused */
  uint64_t drops0 = tt_udp_kernel_drops(r->lport);

  uint32_t queued = 0, refused = 0, next = 0;
  int poll_errs = 0, last_err = 0;
  char last_msg[200] = "";
  int64_t deadline = tt_now_ms() + 15000, died_at = 0;
  mior__fault_counts n;
  for (int iter = 0; iter < 200000 && tt_now_ms() < deadline; iter++) {
    REQUIRE_OK(mior__fault_counts_get(port, &n));
    uint32_t accounted = r->received + (uint32_t)n.rx_faults;
    if (next == N_PKTS && accounted >= queued) break;
    /* Keep a window in flight: at most WINDOW sent and not yet accounted for. */
    for (uint32_t k = 0; k < WINDOW && next < N_PKTS && queued - accounted < 2 * WINDOW; k++) {
      mior_pkt pkt;
      if (mior_tx_acquire(port, &pkt) != 0) break;
      uint32_t len = tt_len_for(next, TT_HDR, 1400);
      tt_fill(pkt.data, len, next);
      int rc = mior_tx_send(port, &pkt, len, &self);
      if (rc == 0) queued++;
      else refused++;
      next++;
    }
    int rc = mior_port_poll(port, 0, 2000);
    if (rc < 0) {
      poll_errs++;
      last_err = rc;
      snprintf(last_msg, sizeof last_msg, "%s", mior_last_error());
    }
    /* Half a second after the socket died nothing more can come: stop there. */
    if (n.died && !died_at) died_at = tt_now_ms();
    if (died_at && tt_now_ms() > died_at + 500) break;
  }
  if (fc->dies && fc->plan.die_err) {
    /* A send after the death is refused with the socket's error and counted, whether or not the
     * window above still had room to try one (how many packets were unaccounted for when the
     * socket died depends on timing). */
    mior_pkt pkt;
    if (mior_tx_acquire(port, &pkt) == 0) {
      uint32_t len = tt_len_for(next, TT_HDR, 1400);
      tt_fill(pkt.data, len, next);
      CHECK_ERR(mior_tx_send(port, &pkt, len, &self), fc->plan.die_err);
      refused++;
    }
  }
  REQUIRE_OK(mior__fault_counts_get(port, &n));
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(port, &st));
  uint64_t kdrops = tt_udp_kernel_drops(r->lport) - drops0;

  printf("    %-22s queued %u refused %u received %u | faults: submit %llu rx %llu tx %llu short %llu "
         "txq %llu dead %llu | poll errors %d%s%s | kernel drops %llu, stats: nobufs %llu refused %llu "
         "rx_err %llu tx_err %llu tx_short %llu\n",
         fc->name, queued, refused, r->received, (unsigned long long)n.submit_faults,
         (unsigned long long)n.rx_faults, (unsigned long long)n.tx_faults,
         (unsigned long long)n.tx_short, (unsigned long long)n.tx_queue_faults,
         (unsigned long long)n.dead_calls, poll_errs, last_err ? " last: " : "", last_msg,
         (unsigned long long)kdrops, (unsigned long long)st.rx_nobufs,
         (unsigned long long)st.conn_refused, (unsigned long long)st.rx_errors,
         (unsigned long long)st.tx_errors, (unsigned long long)st.tx_short);

  CHECK_EQ(r->damaged, 0);
  CHECK_EQ(r->dup, 0);
  if (!fc->dies) {
    /* Nothing unexplained: every queued packet arrived, was lost to an injected receive
     * error, or was dropped by the kernel (counted at the socket). */
    CHECK_EQ(next, N_PKTS);
    CHECK_EQ((uint64_t)r->received + n.rx_faults + kdrops, queued);
    if (fc->plan.tx_queue_every != 1) CHECK(r->received > 0);
    /* Each injected error is counted in the port's stats under its name. */
    uint64_t rx_named = st.rx_nobufs + st.conn_refused + st.rx_errors;
    if (fc->plan.tx_err == -ECONNREFUSED) rx_named -= st.conn_refused; /* those were sends */
    CHECK_EQ(rx_named, n.rx_faults);
    if (fc->plan.rx_err == -ENOBUFS) CHECK_EQ(st.rx_nobufs, n.rx_faults);
    if (fc->plan.rx_err == -ECONNREFUSED) CHECK_EQ(st.conn_refused, n.rx_faults);
    /* Failed sends count in tx_errors, except ICMP-refused ones, which have their own counter. */
    if (fc->plan.tx_err == -ECONNREFUSED) CHECK_EQ(st.conn_refused, n.tx_faults);
    else CHECK_EQ(st.tx_errors, n.tx_faults + refused);
    CHECK_EQ(st.tx_short, n.tx_short);
    if (fc->plan.submit_every) {
      CHECK(n.submit_faults > 0);
      /* A failed submit is reported to the caller of poll, unless the backend's contract calls
       * the error "not an error" (-EINTR). */
      CHECK(poll_errs > 0);
      if (poll_errs) CHECK(strstr(last_msg, "submit") != NULL);
    }
    if (fc->plan.rx_every) CHECK(n.rx_faults > 0);
    if (fc->plan.tx_every) CHECK(n.tx_faults + n.tx_short > 0);
    if (fc->plan.tx_queue_every) CHECK(n.tx_queue_faults > 0);
  } else {
    CHECK_EQ(n.died, 1);
    /* However it died, what could not go out is counted as failed sends. */
    CHECK(st.tx_errors > 0);
    if (fc->plan.die_err) {
      CHECK(poll_errs > 0);
      CHECK_EQ(last_err, fc->plan.die_err);
      CHECK(strstr(last_msg, "socket") != NULL);
    }
  }
  /* Every slot comes back, wherever it was when the faults hit. */
  CHECK_OK(mior_transport_close(t));
  free(r);
}

static const fault_case cases[] = {
    {"submit -EAGAIN /3", {.submit_every = 3, .submit_err = -EAGAIN}, 0},
    {"submit -EBUSY /5", {.submit_every = 5, .submit_err = -EBUSY}, 0},
    {"submit -ENOMEM /7", {.submit_every = 7, .submit_err = -ENOMEM}, 0},
    {"submit -EINTR /2", {.submit_every = 2, .submit_err = -EINTR}, 0},
    {"rx -ENOBUFS /5", {.rx_every = 5, .rx_err = -ENOBUFS}, 0},
    {"rx -ECONNREFUSED /7", {.rx_every = 7, .rx_err = -ECONNREFUSED}, 0},
    {"rx -EMSGSIZE /3", {.rx_every = 3, .rx_err = -EMSGSIZE}, 0},
    {"rx -ECANCELED /4", {.rx_every = 4, .rx_err = -ECANCELED}, 0},
    {"tx -ENOBUFS /4", {.tx_every = 4, .tx_err = -ENOBUFS}, 0},
    {"tx -ECONNREFUSED /6", {.tx_every = 6, .tx_err = -ECONNREFUSED}, 0},
    {"tx short /3", {.tx_every = 3, .tx_err = 0}, 0},
    {"tx_queue -EAGAIN /4", {.tx_queue_every = 4}, 0},
    {"tx_queue -EAGAIN /1", {.tx_queue_every = 1}, 0},
    {"everything at once",
     {.submit_every = 11, .submit_err = -EAGAIN, .rx_every = 13, .rx_err = -EMSGSIZE, .tx_every = 5,
      .tx_err = 0, .tx_queue_every = 9},
     0},
    {"dies: -ENOTCONN", {.die_after = 20, .die_err = -ENOTCONN, .die = die_by_shutdown}, 1},
    {"dies: -EBADF", {.die_after = 5, .die_err = -EBADF}, 1},
    {"dies: shutdown only", {.die_after = 20, .die = die_by_shutdown}, 1},
};

static void body(mior_backend b) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cur = &cases[i];
    int before = test_failures;
    int64_t t0 = tt_now_ms();
    run_case(b);
    printf("    ^ %s: %s, %lld ms\n", cur->name, test_failures != before ? "FAILED" : "ok",
           (long long)(tt_now_ms() - t0));
  }
}

static void body_posted(mior_backend b) {
  /* io_uring with one receive posted per slot instead of multishot: a different reap path. */
  if (b != MIOR_BACKEND_URING) return;
  cur_flags = MIOR_OPT_NO_MULTISHOT;
  body(b);
  cur_flags = 0;
}

int main(void) {
  tt_watchdog(600);
  int ran = tt_for_each_backend("fault cases", body);
  tt_for_each_backend("fault cases (posted receives)", body_posted);
  if (ran == 0) TEST_SKIP("no backend can run here");
  TEST_DONE();
}
