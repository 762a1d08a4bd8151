/* The few operating-system services the front end needs, implemented once per OS
 * (src/linux/os.c, src/win/os.c). */
#ifndef MIOR_COMMON_OS_H
#define MIOR_COMMON_OS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mior__thread mior__thread;

/* Start fn(arg) on a new thread, pinned to cpu when cpu >= 0 (pinning failure is not fatal). */
int mior__thread_start(mior__thread **out, void (*fn)(void *), void *arg, int cpu);
int mior__thread_join(mior__thread *t);
/* An identifier of the calling thread, comparable with ==.  Never 0 and never UINT64_MAX (the
 * port keeps those for "no thread" and "reserved for its transport thread"). */
uint64_t mior__thread_self(void);

/* A reference to a thread that outlives it: taken on the thread itself, it tells any other thread
 * later whether that thread has ended.  A port needs this to know whether the thread that drives
 * it can still touch it (then close from elsewhere must be refused) or is gone (then the kernel
 * has already cancelled that thread's ring work, and another thread may close the port). */
typedef struct mior__thread_ref {
  intptr_t handle; /* Linux: a pidfd for the thread + 1 (0: none); Windows: a thread HANDLE */
  uint64_t id;     /* Linux: the kernel thread id; Windows: the thread id */
} mior__thread_ref;

/* Take a reference to the calling thread.  0 or a negative errno. */
int mior__thread_ref_self(mior__thread_ref *ref);
/* 1 if the thread is still running, 0 if it has ended.  Waits up to wait_ms for it to end: a
 * thread another one has just joined is not always reported ended at once (Linux tells its pidfd
 * a little after pthread_join returns). */
int mior__thread_ref_alive(const mior__thread_ref *ref, int wait_ms);
/* Drop the reference (a zeroed or already dropped one is fine). */
void mior__thread_ref_drop(mior__thread_ref *ref);

/* Monotonic nanoseconds. */
uint64_t mior__now_ns(void);
/* Fill buf with random bytes from the OS (falls back to a time/address mix if unavailable). */
void mior__random_bytes(void *buf, size_t len);
/* Pause instruction for spin loops. */
void mior__cpu_relax(void);
/* Value of an environment variable, or NULL. */
const char *mior__getenv(const char *name);
/* A network interface's index by name, or 0 if there is none (Windows: 0, names unsupported). */
uint32_t mior__if_index(const char *name);
/* An interface's name by index into buf (at least 16 bytes): 0, or -1 if it has none now. */
int mior__if_name(uint32_t index, char *buf, size_t len);

#endif
