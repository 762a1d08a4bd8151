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
/* An identifier of the calling thread, comparable with ==. */
uint64_t mior__thread_self(void);

/* Monotonic nanoseconds. */
uint64_t mior__now_ns(void);
/* Fill buf with random bytes from the OS (falls back to a time/address mix if unavailable). */
void mior__random_bytes(void *buf, size_t len);
/* Pause instruction for spin loops. */
void mior__cpu_relax(void);
/* Value of an environment variable, or NULL. */
const char *mior__getenv(const char *name);

#endif
