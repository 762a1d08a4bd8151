/* Replay the fuzz corpus in a normal build: every file in fuzz/seeds/ and fuzz/regress/ (crash
 * inputs the fuzzers found, kept as regression tests) goes through every harness's entry point.
 * The harnesses are the same sources libFuzzer builds (fuzz/fuzz_*.c), included here with their
 * entry points renamed; a broken invariant aborts, and under the ASan build a memory error fails
 * the test too.  Also runs a fixed set of edge-case inputs (empty, one byte, all zeroes, all 0xff)
 * so the test means something even with an empty corpus. */
#include <dirent.h>
#include <sys/stat.h>

#include "test.h"

#define FUZZ_ENTRY_NAME fuzz_frame_one
#include "../fuzz/fuzz_frame.c"
#undef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME fuzz_ip_one
#include "../fuzz/fuzz_ip.c"
#undef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME fuzz_l4_one
#include "../fuzz/fuzz_l4.c"
#undef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME fuzz_rx_path_one
#include "../fuzz/fuzz_rx_path.c"
#undef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME fuzz_text_one
#include "../fuzz/fuzz_text.c"
#undef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME fuzz_dns_one
#include "../fuzz/fuzz_dns.c"
#undef FUZZ_ENTRY_NAME

typedef int (*fuzz_entry)(const uint8_t *, size_t);
static const struct {
  const char *name;
  fuzz_entry fn;
} harnesses[] = {
    {"fuzz_frame", fuzz_frame_one}, {"fuzz_ip", fuzz_ip_one},     {"fuzz_l4", fuzz_l4_one},
    {"fuzz_rx_path", fuzz_rx_path_one}, {"fuzz_text", fuzz_text_one},
    {"fuzz_dns", fuzz_dns_one},
};
#define NHARNESS (sizeof harnesses / sizeof harnesses[0])

static unsigned files_run;

static void run_all(const uint8_t *d, size_t n) {
  for (size_t i = 0; i < NHARNESS; i++) CHECK_EQ(harnesses[i].fn(d, n), 0);
}

static void replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    TEST_FAIL_AT("cannot open %s", path);
    return;
  }
  static uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  run_all(buf, n);
  files_run++;
}

/* Every regular file under dir, recursively (fuzz/regress/<harness>/...). Depth-bounded. */
static void replay_dir(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode) && depth < 3) replay_dir(path, depth + 1);
    else if (S_ISREG(st.st_mode)) replay_file(path);
  }
  closedir(d);
}

int main(void) {
  static uint8_t edge[4096];
  run_all(edge, 0);
  run_all(edge, 1);
  run_all(edge, sizeof edge);
  memset(edge, 0xff, sizeof edge);
  run_all(edge, 1);
  run_all(edge, 60);
  run_all(edge, sizeof edge);
  replay_dir(MIOR_SOURCE_DIR "/fuzz/seeds", 0);
  replay_dir(MIOR_SOURCE_DIR "/fuzz/regress", 0);
  printf("replayed %u corpus files through %zu harnesses\n", files_run, NHARNESS);
  CHECK(files_run > 0);
  TEST_DONE();
}
