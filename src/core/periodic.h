#ifndef PRODUCT_CORE_PERIODIC_H
#define PRODUCT_CORE_PERIODIC_H
/* The process's one periodic worker: a thread that runs a tick at once,
 * then again after every interval (or the wait the tick asks for), until it
 * is stopped. A kick runs the
 * next tick early (but not sooner than min_gap after the last one); stop
 * wakes every wait at once, so shutdown never waits out an interval.
 *
 * The store's health watcher, the PostgreSQL prober, the key watcher and
 * the etcd registration each run on one. The waits are on a
 * CLOCK_MONOTONIC condition variable: a wall-clock step neither fires nor
 * delays a tick. */
#include <stdbool.h>
#include <stdint.h>

typedef struct periodic periodic;

/* The wait a tick asks for before the next: its own (a backoff), in ms, or
 * the interval. */
#define PERIODIC_INTERVAL (-1)

/* One round of work, on the periodic's thread; returns the wait before the
 * next round (PERIODIC_INTERVAL, or ms >= 0). A long tick may wait inside
 * with periodic_sleep, which returns early when stop comes. */
typedef int64_t (*periodic_tick_fn)(periodic *p, void *arg);
/* Called by periodic_stop on the stopping thread, after the stop is
 * flagged and before the join, with no periodic lock held: ends whatever a
 * tick blocks on outside the periodic (a network call). */
typedef void (*periodic_stop_fn)(void *arg);

typedef struct periodic_options {
  const char *name;          /* the thread's name (15 bytes shown), or NULL */
  periodic_tick_fn tick;
  void *arg;                 /* for tick and on_stop; must outlive the periodic */
  int64_t interval_ms;       /* between the end of a tick and the next; > 0 */
  int64_t min_gap_ms;        /* a kick waits at least this after a tick; 0: none */
  periodic_stop_fn on_stop;  /* may be NULL */
} periodic_options;

/* Starts the thread; its first tick runs at once. Non-zero (nothing
 * started) on a bad option, out of memory or when no thread can be made. */
int periodic_start(const periodic_options *opt, periodic **out);
/* Flags the stop, calls on_stop, wakes the thread, waits for the tick in
 * progress to end and joins it, then frees. NULL is a no-op. */
void periodic_stop(periodic *p);

/* Runs the next tick as soon as min_gap allows. Any thread; cheap. */
void periodic_kick(periodic *p);
/* From a tick: waits ms, or less when stop comes. True when stopping. */
bool periodic_sleep(periodic *p, int64_t ms);
/* True once periodic_stop has begun. Any thread. */
bool periodic_stopping(periodic *p);
/* Ticks begun so far. Any thread. */
uint64_t periodic_ticks(periodic *p);

#endif
