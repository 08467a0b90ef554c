#ifndef PRODUCT_CORE_CLOCK_H
#define PRODUCT_CORE_CLOCK_H
/* The process's one clock module. Durations, deadlines and rate windows are
 * measured on CLOCK_MONOTONIC (never the wall clock, which NTP or an
 * operator may step); the wall clock is only for what a log or a token says
 * about the outside world. */
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t clock_mono_ns(void);
/* CLOCK_MONOTONIC_COARSE in nanoseconds: a few milliseconds of resolution,
 * no syscall; for rate windows counted on an I/O path. */
int64_t clock_mono_coarse_ns(void);
/* CLOCK_REALTIME in microseconds. */
int64_t clock_wall_us(void);
/* The CLOCK_MONOTONIC time ms milliseconds from now, as an absolute
 * timespec for pthread_cond_timedwait on a condition variable whose clock
 * is CLOCK_MONOTONIC (ms <= 0: now). */
void clock_mono_deadline(struct timespec *ts, int64_t ms);

#endif
