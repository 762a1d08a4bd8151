/* io_uring set-up when the kernel refuses every ring: the open must fail cleanly.
 *
 * The io_uring backend tries ring flags newest first, falling back on -EINVAL, and makes a second
 * pass without IORING_SETUP_SUBMIT_ALL (kernels before 5.18).  That second pass runs only when
 * every combination was refused, which no kernel the suite runs on does by itself.  So a child
 * installs a seccomp filter that fails io_uring_setup with EINVAL, only for the ring size the
 * transport asks for (RING_ENTRIES): the backend's own probe, a two-entry ring, still works, so
 * the backend is chosen and its set-up meets the refusals.  Then, for the default flags and for
 * MIOR_OPT_SQPOLL, opening udp://127.0.0.1:0 under the io_uring backend must return -EINVAL with
 * a message naming io_uring_queue_init, not crash or read outside its arrays (the ASan build
 * catches that), and leave no file descriptor open.  The child's exit status is the verdict.
 */
#include <dirent.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* Distinct from the two entries of the backend's probe and from the default of 2048. */
#define RING_ENTRIES 64

#if defined(__x86_64__)
#  define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#  define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* The low 32 bits of the first argument (io_uring_setup's entries, an unsigned int). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#  define ARG0_LO offsetof(struct seccomp_data, args[0])
#else
#  define ARG0_LO (offsetof(struct seccomp_data, args[0]) + 4)
#endif

/* io_uring_setup(RING_ENTRIES, ...) fails with EINVAL; every other call goes through. */
static int refuse_ring_setup(void) {
  struct sock_filter prog[] = {
#ifdef TEST_AUDIT_ARCH
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LO),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RING_ENTRIES, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EINVAL & SECCOMP_RET_DATA)),
  };
  struct sock_fprog fprog = {(unsigned short)(sizeof prog / sizeof prog[0]), prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return -errno;
  return 0;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void open_refused(const char *name, uint32_t flags) {
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_URING;
  o.sq_entries = RING_ENTRIES;
  o.buf_count = 64;
  o.flags |= flags;
  int fds = count_fds();
  mior_transport *t = NULL;
  int rc = mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL);
  printf("  %s: open -> %d (%s): %s\n", name, rc, mior_strerror(rc), mior_last_error());
  CHECK_EQ(rc, -EINVAL);
  CHECK(t == NULL);
  CHECK(strstr(mior_last_error(), "io_uring_queue_init") != NULL);
  CHECK_EQ(count_fds(), fds);
  if (rc == 0) mior_transport_close(t);
}

/* The child: everything after the filter. */
static int child(void) {
  int rc = refuse_ring_setup();
  if (rc < 0) {
    printf("SKIP: seccomp filter: %s\n", strerror(-rc));
    return TEST_SKIP_CODE;
  }
  /* The filter works: a ring of RING_ENTRIES is refused, the probe's two-entry ring is not. */
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  errno = 0;
  CHECK(syscall(__NR_io_uring_setup, RING_ENTRIES, &params) == -1 && errno == EINVAL);
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_URING), 1);
  open_refused("default flags", 0);
  open_refused("MIOR_OPT_SQPOLL", MIOR_OPT_SQPOLL);
  return test_failures ? 1 : 0;
}

int main(void) {
  alarm(60);
  if (mior_backend_supported(MIOR_BACKEND_URING) != 1)
    TEST_SKIP("io_uring unavailable: %s", mior_last_error());
  fflush(stdout);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = child();
    fflush(stdout);
    /* exit, not _exit: under ASan the leak check runs on the failed opens too. */
    exit(rc);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  if (WIFSIGNALED(st)) {
    TEST_FAIL_AT("child killed by signal %d", WTERMSIG(st));
  } else if (WEXITSTATUS(st) == TEST_SKIP_CODE) {
    return TEST_SKIP_CODE;
  } else if (WEXITSTATUS(st) != 0) {
    TEST_FAIL_AT("child exited %d (a sanitizer report or failed checks above)", WEXITSTATUS(st));
  }
  TEST_DONE();
}
