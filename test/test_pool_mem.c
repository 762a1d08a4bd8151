/* mior_pool's memory on Linux: huge pages (the fallback when none are configured, and the real
 * path with a few pages configured for the test when we are root), mlock (granted, and refused
 * once CAP_IPC_LOCK is dropped and RLIMIT_MEMLOCK is small), and NUMA binding (node 0, and nodes
 * that do not exist).  What the pool reports in its stats is checked against what the kernel says
 * about the mapping (/proc/self/smaps, get_mempolicy). */
#include <linux/capability.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/pool_mem.h"
#include "test.h"

#define HUGE_SZ (2u << 20)
#define MPOL_DEFAULT_ 0
#define MPOL_BIND_ 2
#define MPOL_F_NODE_ 1
#define MPOL_F_ADDR_ 2

/* A field (in kB) of the /proc/self/smaps entry of the mapping that contains addr, or -1. */
static long smaps_kb(const void *addr, const char *field) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  int inside = 0;
  long val = -1;
  size_t flen = strlen(field);
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      if (inside) break;
      inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
      continue;
    }
    if (inside && strncmp(line, field, flen) == 0 && line[flen] == ':') {
      val = strtol(line + flen + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return val;
}

static long meminfo(const char *field) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  long val = -1;
  size_t flen = strlen(field);
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, flen) == 0 && line[flen] == ':') val = strtol(line + flen + 1, NULL, 10);
  fclose(f);
  return val;
}

static long read_long(const char *path) {
  FILE *f = fopen(path, "r");
  long v = -1;
  if (!f) return -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static int write_long(const char *path, long v) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int ok = fprintf(f, "%ld\n", v) > 0;
  ok = (fclose(f) == 0) && ok;
  return ok ? 0 : -1;
}

static mior_pool *create(uint32_t count, uint32_t size, uint32_t flags, int node) {
  mior_pool_options o;
  mior_pool *p = NULL;
  mior_pool_options_init(&o);
  o.buf_count = count;
  o.buf_size = size;
  o.flags = flags;
  o.numa_node = node;
  REQUIRE_OK(mior_pool_create(&p, &o));
  return p;
}

static mior_pool_stats stats_of(const mior_pool *p) {
  mior_pool_stats s;
  REQUIRE_OK(mior_pool_stats_get(p, &s));
  return s;
}

/* Take every slot, write all of it, check, give everything back, and close (must be clean). */
static void use_all_and_close(mior_pool *p) {
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  uint32_t *slots = calloc(r.buf_count, sizeof *slots);
  REQUIRE(slots);
  CHECK_EQ(mior_pool_acquire_bulk(p, slots, r.buf_count), r.buf_count);
  for (uint32_t i = 0; i < r.buf_count; i++)
    memset(mior_pool_region_slot(&r, slots[i]), (int)(i & 0xff), r.buf_size);
  for (uint32_t i = 0; i < r.buf_count; i++) {
    uint8_t *b = mior_pool_region_slot(&r, slots[i]);
    CHECK(b[0] == (uint8_t)i && b[r.buf_size - 1] == (uint8_t)i);
  }
  CHECK_OK(mior_pool_release_bulk(p, slots, r.buf_count));
  free(slots);
  uint32_t out = 1;
  CHECK_OK(mior_pool_close(p, &out));
  CHECK_EQ(out, 0);
}

/* ---- huge pages ---- */

static long saved_nr_hugepages = -1;
static const char nr_hugepages_path[] = "/proc/sys/vm/nr_hugepages";

static void restore_hugepages(void) {
  if (saved_nr_hugepages < 0) return;
  if (write_long(nr_hugepages_path, saved_nr_hugepages) != 0)
    fprintf(stderr, "could not restore %s to %ld\n", nr_hugepages_path, saved_nr_hugepages);
  saved_nr_hugepages = -1;
}

/* Ask for more huge pages than are free: the pool must still be created, on normal pages, and
 * say so in its stats. */
static void test_hugepage_fallback(void) {
  long free_pages = meminfo("HugePages_Free");
  long overcommit = read_long("/proc/sys/vm/nr_overcommit_hugepages");
  if (free_pages < 0 || free_pages > 256 || overcommit != 0) {
    printf("note: huge page fallback not tested (free %ld, overcommit %ld)\n", free_pages, overcommit);
    return;
  }
  /* One 2 MiB page more than are free, in 64 KiB slots. */
  uint32_t count = (uint32_t)(free_pages + 1) * (HUGE_SZ / 65536);
  mior_pool *p = create(count, 65536, MIOR_POOL_HUGEPAGES, -1);
  mior_pool_stats s = stats_of(p);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK_EQ(s.hugepages, 0);
  CHECK_EQ(s.locked, 0);
  CHECK_EQ(r.len, (size_t)count * 65536);
  CHECK_EQ(smaps_kb(r.base, "KernelPageSize"), sysconf(_SC_PAGESIZE) / 1024);
  printf("huge pages: %ld free, fallback to normal pages ok (%u x 64 KiB)\n", free_pages, count);
  use_all_and_close(p);
}

/* With a few huge pages configured, the pool must be on them (checked in smaps). */
static void test_hugepage_real(void) {
  if (geteuid() != 0 || access(nr_hugepages_path, W_OK) != 0) {
    printf("note: real huge pages not tested: needs root to configure %s\n", nr_hugepages_path);
    return;
  }
  saved_nr_hugepages = read_long(nr_hugepages_path);
  REQUIRE(saved_nr_hugepages >= 0);
  atexit(restore_hugepages); /* also after a REQUIRE failure */
  long before = meminfo("HugePages_Free");
  if (write_long(nr_hugepages_path, saved_nr_hugepages + 6) != 0 ||
      meminfo("HugePages_Free") < before + 6) {
    restore_hugepages();
    printf("note: real huge pages not tested: the kernel could not reserve 6 more\n");
    return;
  }

  /* The smallest pool still gets a whole huge page. */
  mior_pool *p = create(1, 256, MIOR_POOL_HUGEPAGES, -1);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK_EQ(stats_of(p).hugepages, 1);
  CHECK_EQ(r.len, 256);
  CHECK_EQ((uintptr_t)r.base % HUGE_SZ, 0);
  CHECK_EQ(smaps_kb(r.base, "KernelPageSize"), HUGE_SZ / 1024);
  use_all_and_close(p);

  /* 4 MiB over two pages, locked. */
  p = create(2048, 2048, MIOR_POOL_HUGEPAGES | MIOR_POOL_MLOCK, -1);
  REQUIRE_OK(mior_pool_region_get(p, &r));
  mior_pool_stats s = stats_of(p);
  CHECK_EQ(s.hugepages, 1);
  CHECK_EQ(s.locked, 1);
  CHECK_EQ(smaps_kb(r.base, "KernelPageSize"), HUGE_SZ / 1024);
  CHECK_EQ(smaps_kb(r.base + r.len - 1, "KernelPageSize"), HUGE_SZ / 1024);
  use_all_and_close(p);

  /* With a NUMA node: mapped unpopulated, bound, then populated. */
  p = create(512, 4096, MIOR_POOL_HUGEPAGES, 0);
  REQUIRE_OK(mior_pool_region_get(p, &r));
  s = stats_of(p);
  CHECK_EQ(s.hugepages, 1);
  CHECK_EQ(s.numa_node, mior__pool_mem_numa_supported() ? 0 : -1);
  CHECK_EQ(smaps_kb(r.base, "KernelPageSize"), HUGE_SZ / 1024);
  /* Populated up front: every huge page of the mapping is already resident. */
  CHECK(smaps_kb(r.base, "Private_Hugetlb") >= (long)(r.len / 1024));
  use_all_and_close(p);

  long configured = saved_nr_hugepages;
  restore_hugepages();
  CHECK_EQ(read_long(nr_hugepages_path), configured);
  printf("huge pages: real path ok (configured 6 for the test, restored %ld)\n", configured);
}

/* ---- mlock ---- */

static void test_mlock_granted(void) {
  struct rlimit rl;
  REQUIRE(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
  if (geteuid() != 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (2u << 20)) {
    printf("note: mlock success not tested: RLIMIT_MEMLOCK %llu and not root\n",
           (unsigned long long)rl.rlim_cur);
    return;
  }
  mior_pool *p = create(256, 4096, MIOR_POOL_MLOCK, -1);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  mior_pool_stats s = stats_of(p);
  CHECK_EQ(s.locked, 1);
  CHECK_EQ(s.hugepages, 0);
  /* smaps describes the whole mapping, which the kernel may have merged with a neighbour. */
  CHECK(smaps_kb(r.base, "Locked") >= (long)(r.len / 1024));
  use_all_and_close(p);

  /* Without the flag nothing is locked, but everything is populated. */
  p = create(256, 4096, 0, -1);
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK_EQ(stats_of(p).locked, 0);
  CHECK_EQ(smaps_kb(r.base, "Locked"), 0);
  CHECK(smaps_kb(r.base, "Rss") >= (long)(r.len / 1024));
  use_all_and_close(p);
}

/* Drop CAP_IPC_LOCK from the effective set (needs no privilege) so RLIMIT_MEMLOCK applies. */
static int drop_ipc_lock(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) != 0) return -1;
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  return (int)syscall(SYS_capset, &hdr, data);
}

/* In a child (the changes are for good): with a 64 KiB lock limit and no CAP_IPC_LOCK, a 1 MiB
 * locked pool must fail with the mlock error and a clear message; unlocked still works. */
static void test_mlock_refused(void) {
  fflush(stdout);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit rl = {64 << 10, 64 << 10};
    if (drop_ipc_lock() != 0 || setrlimit(RLIMIT_MEMLOCK, &rl) != 0) _exit(2);
    mior_pool_options o;
    mior_pool *p = (mior_pool *)(uintptr_t)1;
    mior_pool_options_init(&o);
    o.buf_count = 256;
    o.buf_size = 4096;
    o.flags = MIOR_POOL_MLOCK;
    int rc = mior_pool_create(&p, &o);
    if (rc != -ENOMEM && rc != -EPERM) {
      fprintf(stderr, "locked pool over RLIMIT_MEMLOCK: rc %d, expected -ENOMEM/-EPERM\n", rc);
      _exit(1);
    }
    if (p != NULL || !strstr(mior_last_error(), "mlock") || !strstr(mior_last_error(), "RLIMIT_MEMLOCK")) {
      fprintf(stderr, "unclear failure: '%s'\n", mior_last_error());
      _exit(1);
    }
    printf("mlock refused as expected: %s (%s)\n", mior_strerror(rc), mior_last_error());
    o.flags = 0;
    if (mior_pool_create(&p, &o) != 0 || mior_pool_close(p, NULL) != 0) _exit(1);
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
    printf("note: mlock refusal not tested: could not drop CAP_IPC_LOCK or lower the limit\n");
  else
    CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ---- NUMA ---- */

/* The memory policy of the mapping at addr (MPOL_*), with the node mask's first word. */
static int policy_of(const void *addr, unsigned long *mask0) {
  int mode = -1;
  unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
  if (syscall(SYS_get_mempolicy, &mode, mask, 1024ul, addr, (unsigned long)MPOL_F_ADDR_) != 0) return -1;
  *mask0 = mask[0];
  return mode;
}

static int node_of_page(const void *addr) {
  int node = -1;
  if (syscall(SYS_get_mempolicy, &node, NULL, 0ul, addr, (unsigned long)(MPOL_F_NODE_ | MPOL_F_ADDR_)) != 0)
    return -1;
  return node;
}

static int node_count(void) {
  int n = 0;
  char path[64];
  for (int i = 0; i < 1024; i++) {
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d", i);
    if (access(path, F_OK) == 0) n = i + 1;
  }
  return n;
}

static void test_numa(void) {
  int supported = mior__pool_mem_numa_supported();
  unsigned long mask0 = 0;
  printf("numa: binding %s in this build/system, %d node(s)\n", supported ? "supported" : "not supported",
         node_count());

  /* Node 0 exists everywhere. */
  mior_pool *p = create(256, 2048, 0, 0);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  if (supported) {
    CHECK_EQ(stats_of(p).numa_node, 0);
    CHECK_EQ(policy_of(r.base, &mask0), MPOL_BIND_);
    CHECK_EQ(mask0 & 1, 1);
    CHECK_EQ(node_of_page(r.base), 0);
    CHECK_EQ(node_of_page(r.base + r.len - 1), 0);
  } else {
    CHECK_EQ(stats_of(p).numa_node, -1);
    CHECK_EQ(policy_of(r.base, &mask0), MPOL_DEFAULT_);
  }
  CHECK(smaps_kb(r.base, "Rss") >= (long)(r.len / 1024)); /* populated after binding */
  use_all_and_close(p);

  /* No preference, a node just past the last one, and absurd ones: created, unbound, -1. */
  int nodes[] = {-1, node_count(), 1000, 1 << 20, INT32_MAX};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    p = create(64, 4096, 0, nodes[i]);
    REQUIRE_OK(mior_pool_region_get(p, &r));
    if (stats_of(p).numa_node != -1) TEST_FAIL_AT("node %d reported as %d", nodes[i], stats_of(p).numa_node);
    CHECK_EQ(policy_of(r.base, &mask0), MPOL_DEFAULT_);
    use_all_and_close(p);
  }
}

int main(void) {
  test_hugepage_fallback();
  test_hugepage_real();
  test_mlock_granted();
  test_mlock_refused();
  test_numa();
  TEST_DONE();
}
