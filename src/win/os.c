/* Windows OS services for the front end: threads, time, randomness. */
/* rand_s is declared only when this is defined before <stdlib.h>. */
#define _CRT_RAND_S
#include <errno.h>
#include <stdlib.h>
#include <windows.h>

#include "common/internal.h"
#include "common/os.h"

struct mior__thread {
  HANDLE handle;
  void (*fn)(void *);
  void *arg;
};

static DWORD WINAPI thread_main(LPVOID arg) {
  struct mior__thread *t = arg;
  t->fn(t->arg);
  return 0;
}

int mior__thread_start(mior__thread **out, void (*fn)(void *), void *arg, int cpu) {
  struct mior__thread *t = calloc(1, sizeof *t);
  if (!t) return mior__fail(-ENOMEM, "out of memory for a thread");
  t->fn = fn;
  t->arg = arg;
  t->handle = CreateThread(NULL, 0, thread_main, t, CREATE_SUSPENDED, NULL);
  if (!t->handle) {
    free(t);
    return mior__fail(-ENOMEM, "CreateThread failed (%lu)", (unsigned long)GetLastError());
  }
  /* Pinning is a wish: a CPU outside the process's set must not stop the port from running. */
  if (cpu >= 0 && cpu < 64) SetThreadAffinityMask(t->handle, (DWORD_PTR)1 << cpu);
  ResumeThread(t->handle);
  *out = t;
  return 0;
}

int mior__thread_join(mior__thread *t) {
  if (!t) return 0;
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
  free(t);
  return 0;
}

uint64_t mior__thread_self(void) {
  return (uint64_t)GetCurrentThreadId();
}

int mior__thread_ref_self(mior__thread_ref *ref) {
  ref->id = (uint64_t)GetCurrentThreadId();
  /* A real handle (GetCurrentThread's is a pseudo-handle that means "the caller" wherever it is
   * used) that becomes signalled when the thread ends. */
  HANDLE h = OpenThread(SYNCHRONIZE, FALSE, GetCurrentThreadId());
  ref->handle = (intptr_t)h;
  return h ? 0 : mior__fail(-ENOMEM, "OpenThread failed (%lu)", (unsigned long)GetLastError());
}

int mior__thread_ref_alive(const mior__thread_ref *ref, int wait_ms) {
  if (!ref->handle) return 0;
  return WaitForSingleObject((HANDLE)ref->handle, (DWORD)wait_ms) == WAIT_TIMEOUT;
}

void mior__thread_ref_drop(mior__thread_ref *ref) {
  if (ref->handle) CloseHandle((HANDLE)ref->handle);
  ref->handle = 0;
  ref->id = 0;
}

uint64_t mior__now_ns(void) {
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;
  if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (uint64_t)((double)now.QuadPart * 1e9 / (double)freq.QuadPart);
}

void mior__random_bytes(void *buf, size_t len) {
  uint8_t *p = buf;
  /* rand_s draws from the system's cryptographic generator (RtlGenRandom). */
  while (len) {
    unsigned int v;
    if (rand_s(&v) != 0) break;
    for (int i = 0; i < 4 && len; i++, len--) *p++ = (uint8_t)(v >> (8 * i));
  }
  uint64_t x = mior__now_ns() ^ (uint64_t)(uintptr_t)buf;
  while (len--) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    *p++ = (uint8_t)x;
  }
}

void mior__cpu_relax(void) {
  YieldProcessor();
}

const char *mior__getenv(const char *name) {
  return getenv(name);
}

/* Interface names in address text would need iphlpapi's if_nametoindex; a scope is taken as a
 * number on Windows ("fe80::1%12"), which is also what its own tools print. */
uint32_t mior__if_index(const char *name) {
  (void)name;
  return 0;
}

int mior__if_name(uint32_t index, char *buf, size_t len) {
  (void)index;
  (void)buf;
  (void)len;
  return -1;
}
