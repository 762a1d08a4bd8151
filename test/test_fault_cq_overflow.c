/* A real completion-queue overflow: a ring with a tiny CQ (8 entries), far more receives armed
 * than that, and a burst of datagrams sent while the port is not polled.  When the port is then
 * polled, more completions are due than the CQ holds.  Whether the kernel counts an overflow
 * (io_uring keeps overflowed completions on a backlog since 5.5, IORING_FEAT_NODROP) or not,
 * nothing may be lost from the pool, every datagram must be received or counted as dropped by a
 * named cause, and the port must keep working afterwards.  Runs under both backends (the sockets
 * backend has no CQ to overflow: the same checks hold) and io_uring with posted receives. */
#include <sys/socket.h>

#include "transport_common.h"

#define BURST 200u

struct rx {
  uint8_t seen[2 * BURST];
  uint32_t received, bad;
};

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  struct rx *r = ctx;
  uint32_t seq;
  if (tt_check(pkt->data, pkt->len, &seq) != 0 || seq >= 2 * BURST || r->seen[seq]) r->bad++;
  else r->seen[seq] = 1, r->received++;
  return MIOR_DONE;
}

static uint32_t cur_flags;

/* Send seq [from, from+n) from a plain socket: the sender must not be the port under test. */
static void burst(int fd, const mior_addr *to, uint32_t from, uint32_t n) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(to->port);
  memcpy(&sin.sin_addr, to->addr, 4);
  uint8_t buf[400]; /* fits a 512-byte slot after the multishot header and the address */
  for (uint32_t s = from; s < from + n; s++) {
    uint32_t len = tt_len_for(s, TT_HDR, sizeof buf);
    tt_fill(buf, len, s);
    CHECK(sendto(fd, buf, len, 0, (struct sockaddr *)&sin, sizeof sin) == (ssize_t)len);
  }
}

static void drain(mior_port *port, struct rx *r, uint32_t want) {
  int64_t end = tt_now_ms() + 3000;
  while (r->received < want && tt_now_ms() < end) CHECK(mior_port_poll(port, 0, 10000) >= 0);
}

static void body(mior_backend b) {
  struct rx *r = calloc(1, sizeof *r);
  REQUIRE(r);
  mior_options o = tt_opts(b);
  o.sq_entries = 8;
  o.cq_entries = 8;
  o.batch = 8;
  o.buf_count = 1024;
  o.rx_depth = 512;
  o.buf_size = 512;
  o.flags |= cur_flags;
  mior_receiver rcv = {consume, NULL, r};
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_port *port = mior_transport_port(t, 0);
  mior_addr self;
  REQUIRE_OK(mior_port_local_addr(port, &self));
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);

  /* Arm the receives, then let a burst arrive while nobody polls. */
  CHECK(mior_port_poll(port, 0, 0) >= 0);
  burst(fd, &self, 0, BURST);
  usleep(50000);
  drain(port, r, BURST);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(port, &st));
  uint64_t named = st.rx_nobufs + st.rx_errors + st.rx_drop_truncated;
  printf("    [%s%s] burst of %u: received %u, cq_overflow %llu, named drops %llu, pool in use %u\n",
         mior_backend_name(b), cur_flags ? ", posted" : "", BURST, r->received,
         (unsigned long long)st.cq_overflow, (unsigned long long)named, st.pool_in_use);
  CHECK_EQ(r->bad, 0);
  /* With NODROP every datagram is kept; a kernel without it must at least count the loss. */
  CHECK(r->received + named + st.cq_overflow >= BURST);
  if (r->received < BURST) CHECK(st.cq_overflow + named > 0);

  /* The port keeps working: a second burst, received in full at a pace the CQ can follow. */
  for (uint32_t k = 0; k < BURST; k += 4) {
    burst(fd, &self, BURST + k, 4);
    drain(port, r, BURST + k + 4 > r->received ? r->received + 4 : r->received);
  }
  REQUIRE_OK(mior_port_stats_get(port, &st));
  uint64_t named2 = st.rx_nobufs + st.rx_errors + st.rx_drop_truncated;
  printf("    [%s%s] then %u paced: received %u in all, cq_overflow %llu, named drops %llu\n",
         mior_backend_name(b), cur_flags ? ", posted" : "", BURST, r->received,
         (unsigned long long)st.cq_overflow, (unsigned long long)named2);
  /* The second burst arrives in full whatever happened to the first. */
  CHECK(r->received + named >= 2 * BURST);
  CHECK_EQ(st.user_held, 0);
  close(fd);
  CHECK_OK(mior_transport_close(t)); /* nothing lost from the pool */
  free(r);
}

static void body_posted(mior_backend b) {
  if (b != MIOR_BACKEND_URING) return;
  cur_flags = MIOR_OPT_NO_MULTISHOT;
  body(b);
  cur_flags = 0;
}

int main(void) {
  tt_watchdog(60);
  int ran = tt_for_each_backend("cq overflow", body);
  tt_for_each_backend("cq overflow (posted receives)", body_posted);
  if (ran == 0) TEST_SKIP("no backend can run here");
  TEST_DONE();
}
