/* mior-perf: the thin layer over the operating system.
 *
 * Everything mior-perf needs from the system and that differs between Linux and Windows is
 * declared here and implemented twice: os_linux.c (POSIX threads, clock_gettime, signals,
 * network namespaces) and os_win.c (Win32 threads, QueryPerformanceCounter, the console control
 * handler).  tools/CMakeLists.txt builds one of the two; the rest of the tool is the same code on
 * both systems.  The Windows file uses only Win32 and the C runtime, so MSVC can build it too.
 *
 * The network environment (loopback or a namespace pair) is also per system; its functions are
 * declared in perf.h because they take the tool's own types.
 */
#ifndef MIOR_PERF_OS_H
#define MIOR_PERF_OS_H

#include <stdatomic.h>
#include <stdint.h>

#include <mior/mior.h>

/* Once, first thing in main: whatever the system needs before the rest (Windows: a 1 ms timer
 * tick, so sleeps are not rounded up to 15.6 ms). */
void perf_os_init(void);

/* A worker thread.  The pointer stays valid until perf_thread_join, which frees it. */
typedef struct perf_thread perf_thread;

/* Start fn(arg) on a new thread, which never takes the interrupt (Ctrl-C): the main thread does,
 * so it can stop the workers and clean up.  0 or a negative errno. */
int perf_thread_start(perf_thread **out, void *(*fn)(void *), void *arg);
/* Wait for the thread to finish and free it. */
void perf_thread_join(perf_thread *t);
/* Pin the calling thread to one CPU (cpu < 0: leave it).  A refusal (a restricted cpuset or
 * affinity mask) is not worth failing a run over, so it is ignored. */
void perf_thread_pin(int cpu);
/* CPUs online (at least 1). */
int perf_cpu_count(void);

/* The monotonic clock in nanoseconds, and a sleep that ends early when the process is
 * interrupted (the callers check their stop flags afterwards).  On Windows a sleep lasts at
 * least a millisecond. */
uint64_t perf_now_ns(void);
void perf_sleep_ns(uint64_t ns);

/* User + system CPU seconds the calling thread has used so far (Linux: getrusage(RUSAGE_THREAD);
 * Windows: GetThreadTimes). */
double perf_thread_cpu_s(void);

/* A random number for the run id: it only has to differ between runs, so that a receiver can
 * reject the stragglers of an earlier run. */
uint32_t perf_random_u32(void);

/* 1 if stderr is a terminal that can show the progress line (which redraws itself with "\r"
 * and the ANSI "erase line" sequence), else 0. */
int perf_stderr_is_terminal(void);

/* From now on, Ctrl-C (and on Linux SIGTERM and SIGHUP; on Windows Ctrl-Break and closing the
 * console) sets *flag to 1 and wakes perf_sleep_ns instead of ending the process. */
void perf_interrupt_install(atomic_int *flag);

/* The system's ring backend: MIOR_BACKEND_URING on Linux, MIOR_BACKEND_IORING on Windows. */
mior_backend perf_ring_backend(void);

#endif
