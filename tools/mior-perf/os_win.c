/* mior-perf on Windows: Win32 threads and affinity masks, QueryPerformanceCounter, the console
 * control handler for Ctrl-C, and the console's terminal mode.  Only Win32 and the C runtime
 * (no POSIX layer), so MSVC builds it as well as mingw-w64.  See os.h.
 *
 * What Windows runs: udp over loopback.  There are no network namespaces, so --netns and --rps
 * are refused, and so are the ip and packet kinds, which mior-perf runs only across a namespace
 * pair (packet:// does not exist on Windows at all; see docs/WINDOWS.md).
 */
#include <errno.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <mmsystem.h> /* timeBeginPeriod (winmm) */

#include "os.h"
#include "perf.h"

/* ---- threads ---- */

struct perf_thread {
  HANDLE handle;
  void *(*fn)(void *);
  void *arg;
};

static DWORD WINAPI thread_main(LPVOID p) {
  perf_thread *t = p;
  t->fn(t->arg);
  return 0;
}

int perf_thread_start(perf_thread **out, void *(*fn)(void *), void *arg) {
  perf_thread *t = malloc(sizeof *t);
  if (!t) return -ENOMEM;
  t->fn = fn;
  t->arg = arg;
  /* Console control events are delivered on a thread of their own, never on this one, so there
   * is nothing to block here (unlike signals on Linux). */
  t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
  if (!t->handle) {
    free(t);
    return -EAGAIN;
  }
  *out = t;
  return 0;
}

void perf_thread_join(perf_thread *t) {
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
  free(t);
}

void perf_thread_pin(int cpu) {
  /* One affinity mask covers the first processor group (up to 64 CPUs), which is where
   * mior-perf's two threads go. */
  if (cpu < 0 || cpu >= (int)(sizeof(DWORD_PTR) * 8)) return;
  (void)SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu);
}

int perf_cpu_count(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwNumberOfProcessors >= 1 ? (int)si.dwNumberOfProcessors : 1;
}

int perf_thread_setup(int cpu, int netns_fd, perf_error *err) {
  (void)netns_fd; /* always -1: perf_os_check_args refuses --netns */
  (void)err;
  perf_thread_pin(cpu);
  return 0;
}

/* ---- time ---- */

/* Set when the interrupt handler is installed: it ends every perf_sleep_ns at once. */
static HANDLE wake_event;

uint64_t perf_now_ns(void) {
  static LARGE_INTEGER freq; /* constant while the system runs; a racing first call writes the same */
  LARGE_INTEGER now;
  if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  uint64_t t = (uint64_t)now.QuadPart, f = (uint64_t)freq.QuadPart;
  /* Split so that ticks * 1e9 cannot overflow (the counter runs at 10 MHz or more). */
  return t / f * 1000000000u + t % f * 1000000000u / f;
}

void perf_sleep_ns(uint64_t ns) {
  /* Windows sleeps in whole milliseconds, rounded up to the timer tick (1 ms after
   * perf_os_init).  Shorter sleeps take one tick: spinning instead would take a CPU from the
   * workers while the main thread waits on a latch. */
  uint64_t ms = (ns + 999999u) / 1000000u;
  DWORD wait = ms > 0xfffffff0u ? 0xfffffff0u : (DWORD)ms;
  if (wake_event)
    WaitForSingleObject(wake_event, wait);
  else
    Sleep(wait);
}

double perf_thread_cpu_s(void) {
  FILETIME created, exited, kernel, user;
  if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user)) return 0;
  ULARGE_INTEGER k, u;
  k.LowPart = kernel.dwLowDateTime, k.HighPart = kernel.dwHighDateTime;
  u.LowPart = user.dwLowDateTime, u.HighPart = user.dwHighDateTime;
  return (double)(k.QuadPart + u.QuadPart) / 1e7; /* 100 ns units */
}

uint32_t perf_random_u32(void) {
  /* Different in every run, which is all the run id needs: the counter, the process and thread
   * ids and a stack address, mixed (splitmix64's finaliser). */
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  uint64_t x = (uint64_t)c.QuadPart ^ ((uint64_t)GetCurrentProcessId() << 32) ^
               (uint64_t)GetCurrentThreadId() ^ (uint64_t)(uintptr_t)&c;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return (uint32_t)x;
}

/* ---- the console ---- */

int perf_stderr_is_terminal(void) {
  if (!_isatty(_fileno(stderr))) return 0;
  /* The progress line redraws itself with ANSI sequences: a console shows them once virtual
   * terminal processing is on (Windows 10 1511 and later); an older console would print them
   * as text, so there is no progress line there. */
  HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
  DWORD mode;
  if (h == INVALID_HANDLE_VALUE || !GetConsoleMode(h, &mode)) return 0;
  if (mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING) return 1;
  return SetConsoleMode(h, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) ? 1 : 0;
}

static atomic_int *interrupt_flag;

static BOOL WINAPI on_console_event(DWORD type) {
  switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
      /* The handler runs on its own thread; the workers and the main thread see the flag within
       * 100 ms, and the main thread's sleep ends now. */
      if (interrupt_flag) atomic_store(interrupt_flag, 1);
      if (wake_event) SetEvent(wake_event);
      return TRUE;
    default:
      return FALSE;
  }
}

void perf_interrupt_install(atomic_int *flag) {
  interrupt_flag = flag;
  /* Manual reset: once interrupted, every later sleep returns at once too. */
  wake_event = CreateEventW(NULL, TRUE, FALSE, NULL);
  SetConsoleCtrlHandler(on_console_event, TRUE);
}

mior_backend perf_ring_backend(void) {
  return MIOR_BACKEND_IORING;
}

void perf_os_init(void) {
  /* A 1 ms timer tick for this process (the default is 15.6 ms), so --rate pacing and the
   * progress line keep time; Windows restores the tick when the process ends. */
  timeBeginPeriod(1);
}

/* ---- the command line and the environment ---- */

int perf_os_check_args(const perf_config *cfg, int rps) {
  const char *what = NULL;
  if (cfg->kind != PERF_KIND_UDP)
    what = cfg->kind == PERF_KIND_IP ? "--kind ip" : "--kind packet";
  else if (cfg->netns)
    what = "--netns";
  else if (rps)
    what = "--rps";
  if (!what) return -1;
  fprintf(stderr,
          "mior-perf: %s is not available on Windows: it needs Linux network namespaces; "
          "Windows runs --kind udp over loopback\n(mior-perf --help for usage)\n",
          what);
  return PERF_EXIT_USAGE;
}

int perf_os_env_open(const perf_config *cfg, int rps, perf_env *env, const atomic_int *interrupted) {
  (void)cfg, (void)rps, (void)env, (void)interrupted;
  return -1; /* loopback, as the caller set it up */
}

int perf_os_env_close(const perf_config *cfg) {
  (void)cfg;
  return 0;
}

const char *perf_os_env_name(const perf_config *cfg) {
  (void)cfg;
  return "loopback";
}
