/* A thread (and a sleep) for tests that must build with MSVC as well as GCC and mingw-w64: POSIX
 * threads where they exist, the Win32 API on Windows (MSVC has no <pthread.h>, and mingw-w64 has
 * no C11 <threads.h>, so neither standard header serves both).  The body keeps the pthread shape,
 * void *fn(void *), so a test reads the same on every system. */
#ifndef MIOR_TEST_THREAD_H
#define MIOR_TEST_THREAD_H

#if defined(_WIN32)

#include <windows.h>

typedef struct test_thread {
  HANDLE handle;
  void *(*fn)(void *);
  void *arg;
} test_thread;

static inline DWORD WINAPI test_thread_main_(LPVOID p) {
  test_thread *t = p;
  t->fn(t->arg);
  return 0;
}

/* Start fn(arg); 0 or -1.  *t must stay in place until test_thread_join. */
static inline int test_thread_start(test_thread *t, void *(*fn)(void *), void *arg) {
  t->fn = fn;
  t->arg = arg;
  t->handle = CreateThread(NULL, 0, test_thread_main_, t, 0, NULL);
  return t->handle ? 0 : -1;
}

static inline void test_thread_join(test_thread *t) {
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
}

static inline void test_thread_yield(void) {
  SwitchToThread();
}

/* Sleep for about us microseconds; Windows sleeps in whole milliseconds, and 0 gives up the rest
 * of the time slice. */
static inline void test_sleep_us(unsigned us) {
  Sleep(us / 1000);
}

#else

#include <pthread.h>
#include <sched.h>
#include <time.h>

typedef struct test_thread {
  pthread_t id;
} test_thread;

static inline int test_thread_start(test_thread *t, void *(*fn)(void *), void *arg) {
  return pthread_create(&t->id, NULL, fn, arg) == 0 ? 0 : -1;
}

static inline void test_thread_join(test_thread *t) {
  pthread_join(t->id, NULL);
}

static inline void test_thread_yield(void) {
  sched_yield();
}

static inline void test_sleep_us(unsigned us) {
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

#endif

#endif /* MIOR_TEST_THREAD_H */
