/* Least privilege: udp:// works for an unprivileged user; ip:// and packet:// need CAP_NET_RAW and,
 * without it, fail with -EPERM and a message that names CAP_NET_RAW.  Each check runs in a child
 * that drops to nobody (uid/gid 65534, no supplementary groups, no capabilities) before opening
 * anything.  Needs root to drop privileges; skips otherwise. */
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "transport_common.h"

/* Run fn as nobody in a child; returns its exit status (0 pass, 1 fail, 77 skip). */
static int as_nobody(int (*fn)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
      perror("drop to nobody");
      _exit(1);
    }
    if (geteuid() != 65534 || setuid(0) == 0) _exit(1); /* really dropped, for good */
    int rc = fn();
    fflush(stdout);
    _exit(rc);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 1;
  return WEXITSTATUS(st);
}

static int udp_works(void) {
  int fails = 0;
  for (const mior__backend_ops *const *ops = mior__backends; *ops; ops++) {
    mior_backend b = (*ops)->id;
    if (mior_backend_supported(b) != 1) {
      printf("  udp as nobody [%s]: SKIP (%s)\n", mior_backend_name(b), mior_last_error());
      continue;
    }
    mior_options o = tt_opts(b);
    o.buf_count = 256;
    mior_transport *t = NULL;
    int rc = mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL);
    if (rc < 0) {
      printf("  udp as nobody [%s]: FAIL %s (%s)\n", mior_backend_name(b), mior_strerror(rc),
             mior_last_error());
      fails++;
      continue;
    }
    /* Send one datagram to ourselves and receive it: the whole path, not just the open. */
    mior_port *p = mior_transport_port(t, 0);
    mior_addr self;
    mior_pkt pkt;
    int got = 0;
    if (mior_port_local_addr(p, &self) == 0 && mior_tx_acquire(p, &pkt) == 0) {
      memset(pkt.data, 0x5a, 64);
      if (mior_tx_send(p, &pkt, 64, &self) == 0)
        for (int k = 0; k < 100 && got == 0; k++) {
          int n = mior_port_poll(p, 0, 10000);
          if (n > 0) got += n;
        }
    }
    mior_port_stats st;
    mior_port_stats_get(p, &st);
    printf("  udp as nobody [%s]: %s (features 0x%x)\n", mior_backend_name(b),
           got == 1 ? "ok" : "FAIL: datagram not received", st.features);
    fails += got != 1;
    if (mior_transport_close(t) != 0) fails++;
  }
  return fails ? 1 : 0;
}

static int raw_refused(void) {
  int fails = 0;
  const char *eps[] = {"ip://127.0.0.1/udp", "packet://lo"};
  for (int i = 0; i < 2; i++) {
    mior_transport *t = NULL;
    int rc = mior_transport_open(&t, eps[i], NULL, NULL);
    const char *msg = mior_last_error();
    int ok = rc == -EPERM && strstr(msg, "CAP_NET_RAW") != NULL && t == NULL;
    printf("  %s as nobody: %s -> %d (%s) \"%s\"\n", eps[i], ok ? "ok" : "FAIL", rc, mior_strerror(rc), msg);
    fails += !ok;
    if (t) mior_transport_close(t);
  }
  return fails ? 1 : 0;
}

/* The same endpoints work with CAP_NET_RAW (root here): the refusal above is about privilege. */
static void raw_works_as_root(void) {
  const char *eps[] = {"ip://127.0.0.1/udp", "packet://lo"};
  for (int i = 0; i < 2; i++) {
    mior_transport *t = NULL;
    mior_options o;
    mior_options_init(&o);
    o.buf_count = 256;
    CHECK_OK(mior_transport_open(&t, eps[i], &o, NULL));
    if (t) CHECK_OK(mior_transport_close(t));
  }
}

int main(void) {
  tt_watchdog(60);
  if (geteuid() != 0) TEST_SKIP("needs root to drop to an unprivileged user (uid %u)", (unsigned)geteuid());
  CHECK_EQ(as_nobody(udp_works), 0);
  CHECK_EQ(as_nobody(raw_refused), 0);
  raw_works_as_root();
  TEST_DONE();
}
