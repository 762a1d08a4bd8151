/* System calls of the data path, counted by the kernel's syscall entry (syscall_count.h: seccomp
 * user notification on the measured thread only), against what the port says and what it should
 * cost:
 *
 *   - the counter itself catches liburing 2.3's inline io_uring_enter, exactly.
 *
 * Every measurement runs in its own thread (the filter stays on the thread it was installed on);
 * the kernel sockets at the other end run in threads started before it, so they are not counted.
 * Traffic stays on loopback; every loop is bounded in count and time.
 */
#include <liburing.h>

#include "syscall_count.h"
#include "transport_common.h"

/* --- A: the counter -------------------------------------------------------------------------- */

static const long uring_nrs[] = {__NR_io_uring_enter};

typedef struct selfcheck {
  uint64_t after_init, after_submit, after_empty_submit, after_submit_wait, after_raw;
  int cqes;
  int init_rc;
} selfcheck;

static void selfcheck_body(sc_session *s, void *arg) {
  selfcheck *c = arg;
  struct io_uring ring;
  c->init_rc = io_uring_queue_init(8, &ring, 0);
  if (c->init_rc < 0) return;
  c->after_init = sc_count(s, __NR_io_uring_enter);
  io_uring_prep_nop(io_uring_get_sqe(&ring));
  CHECK_EQ(io_uring_submit(&ring), 1);
  c->after_submit = sc_count(s, __NR_io_uring_enter);
  /* Nothing to submit on a plain ring: liburing does not enter. */
  CHECK_EQ(io_uring_submit(&ring), 0);
  c->after_empty_submit = sc_count(s, __NR_io_uring_enter);
  io_uring_prep_nop(io_uring_get_sqe(&ring));
  CHECK_EQ(io_uring_submit_and_wait(&ring, 2), 1);
  c->after_submit_wait = sc_count(s, __NR_io_uring_enter);
  /* Through libc, for comparison: the same count whichever way the call is made. */
  CHECK_EQ(syscall(__NR_io_uring_enter, ring.ring_fd, 0, 0, 0, NULL, 0), 0);
  c->after_raw = sc_count(s, __NR_io_uring_enter);
  c->cqes = (int)io_uring_cq_ready(&ring);
  io_uring_queue_exit(&ring);
}

static void test_counter(void) {
  selfcheck c;
  memset(&c, 0, sizeof c);
  sc_session s;
  if (sc_run(&s, uring_nrs, 1, selfcheck_body, &c) < 0) TEST_SKIP("%s", s.why);
  if (c.init_rc < 0) {
    printf("  counter: io_uring_enter not checked (io_uring_queue_init: %s)\n", strerror(-c.init_rc));
    return;
  }
  printf("  counter: io_uring_enter after init %llu, submit %llu, empty submit %llu, submit_and_wait "
         "%llu, raw %llu\n", (unsigned long long)c.after_init, (unsigned long long)c.after_submit,
         (unsigned long long)c.after_empty_submit, (unsigned long long)c.after_submit_wait,
         (unsigned long long)c.after_raw);
  CHECK_EQ(c.after_init, 0);          /* io_uring_setup is not io_uring_enter */
  CHECK_EQ(c.after_submit, 1);        /* liburing's inline syscall is caught */
  CHECK_EQ(c.after_empty_submit, 1);
  CHECK_EQ(c.after_submit_wait, 2);
  CHECK_EQ(c.after_raw, 3);
  CHECK_EQ(c.cqes, 2);                /* the calls really ran: both NOPs completed */
}

int main(void) {
  tt_watchdog(110);
  test_counter();
  TEST_DONE();
}
