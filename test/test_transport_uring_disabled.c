/* The real thing behind the forced-fallback test: with kernel.io_uring_disabled=2 the kernel
 * refuses io_uring_setup, and the library must notice it by itself (no environment variable):
 * supported(URING) is 0, AUTO falls back to sockets with a reason, demanding URING is -EOPNOTSUPP.
 *
 * The sysctl is global: every process on the machine loses io_uring while it is set.  So this test
 * runs only when MIOR_TEST_GLOBAL_SYSCTL=1 (and should run with CTest's RUN_SERIAL), keeps the
 * window to a few milliseconds, and restores the old value on every way out.
 */
#include <fcntl.h>

#include "transport_common.h"

#define SYSCTL_PATH "/proc/sys/kernel/io_uring_disabled"

static char saved[8];
static int changed;

static int write_sysctl(const char *v) {
  int fd = open(SYSCTL_PATH, O_WRONLY);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, v, strlen(v));
  int e = errno;
  close(fd);
  return n == (ssize_t)strlen(v) ? 0 : -e;
}

static void restore(void) {
  if (changed) {
    changed = 0;
    if (write_sysctl(saved) != 0) {
      const char m[] = "FAIL: could not restore " SYSCTL_PATH "\n";
      ssize_t w = write(2, m, sizeof m - 1);
      (void)w;
    }
  }
}

static void on_signal(int sig) {
  restore();
  signal(sig, SIG_DFL);
  raise(sig);
}

int main(void) {
  if (!getenv("MIOR_TEST_GLOBAL_SYSCTL") || strcmp(getenv("MIOR_TEST_GLOBAL_SYSCTL"), "1") != 0)
    TEST_SKIP("changes kernel.io_uring_disabled for the whole machine; set "
              "MIOR_TEST_GLOBAL_SYSCTL=1 to run it (serially)");
  if (geteuid() != 0) TEST_SKIP("needs root to change kernel.io_uring_disabled");
  int fd = open(SYSCTL_PATH, O_RDONLY);
  if (fd < 0) TEST_SKIP("%s: %s (kernel without the sysctl)", SYSCTL_PATH, strerror(errno));
  ssize_t n = read(fd, saved, sizeof saved - 1);
  close(fd);
  REQUIRE(n > 0);
  saved[n] = '\0';
  if (mior_backend_supported(MIOR_BACKEND_URING) != 1)
    TEST_SKIP("io_uring is already unavailable: %s", mior_last_error());
  unsetenv("MIOR_DISABLE_URING");

  atexit(restore);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGALRM, on_signal);
  signal(SIGSEGV, on_signal);
  signal(SIGABRT, on_signal);
  alarm(20);

  /* Everything that needs the sysctl set happens between these two lines. */
  changed = 1;
  REQUIRE_OK(write_sysctl("2"));
  int64_t t0 = tt_now_us();
  int sup = mior_backend_supported(MIOR_BACKEND_URING);
  char why[256];
  snprintf(why, sizeof why, "%s", mior_last_error());
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_URING;
  mior_transport *tu = NULL, *ta = NULL;
  int rc_uring = mior_transport_open(&tu, "udp://127.0.0.1:0", &o, NULL);
  char why_open[256];
  snprintf(why_open, sizeof why_open, "%s", mior_last_error());
  int rc_auto = mior_transport_open(&ta, "udp://127.0.0.1:0", NULL, NULL);
  restore();
  int64_t window = tt_now_us() - t0;

  printf("  io_uring_disabled=2 for %.2f ms\n", window / 1000.0);
  CHECK_EQ(sup, 0);
  printf("  supported(uring): %d (%s)\n", sup, why);
  CHECK(why[0] != '\0');
  CHECK_ERR(rc_uring, -EOPNOTSUPP);
  CHECK(why_open[0] != '\0');
  if (rc_uring == 0) mior_transport_close(tu);
  CHECK_OK(rc_auto);
  if (rc_auto == 0) {
    mior_port_stats st;
    CHECK_OK(mior_transport_stats_get(ta, &st));
    CHECK_EQ(st.backend, MIOR_BACKEND_SOCKETS);
    CHECK(st.features & MIOR_FEAT_FALLBACK);
    CHECK(st.fallback_reason[0] != '\0');
    printf("  auto -> %s, reason: %s\n", mior_backend_name(st.backend), st.fallback_reason);
    CHECK_EQ(mior_transport_close(ta), 0);
  }
  /* Restored: io_uring is back (a fresh probe, not a cached answer, must say so). */
  mior_transport *tb = NULL;
  CHECK_OK(mior_transport_open(&tb, "udp://127.0.0.1:0", &o, NULL));
  if (tb) mior_transport_close(tb);
  TEST_DONE();
}
