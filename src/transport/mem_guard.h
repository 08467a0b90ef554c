#ifndef PRODUCT_TRANSPORT_MEM_GUARD_H
#define PRODUCT_TRANSPORT_MEM_GUARD_H
/* The memory guard: a core/periodic worker samples the process's RSS every
 * interval and, above the limit, sets the shedding flag that new calls read
 * (one relaxed atomic load, no syscall per call) and tells whoever wired it
 * (on_shed: the app holds health NOT_SERVING; the guard knows nothing of
 * the service). It also gives freed heap back to the system (malloc_trim)
 * after a burst, which glibc does not do by itself for memory freed in the
 * middle of its arenas. */
#include <stdbool.h>
#include <stdint.h>

#define MEM_GUARD_INTERVAL_MS 100

typedef struct mem_guard mem_guard;

/* Called on the guard's thread when shedding starts (true) and when it
 * stops (false): once per change, after the flag has changed. */
typedef void (*mem_guard_shed_fn)(void *ctx, bool shedding);

/* Called from the guard's thread once a second while shedding, to close
 * the connection that costs most (the guard's close_costliest). */
typedef void (*mem_guard_pressure_fn)(void *ctx);

typedef struct mem_guard_options {
  int64_t limit_bytes;            /* 0: never shed (RSS is still sampled for the trim) */
  int interval_ms;                /* <= 0: MEM_GUARD_INTERVAL_MS */
  mem_guard_shed_fn on_shed;      /* may be NULL */
  mem_guard_pressure_fn pressure; /* may be NULL */
  void *ctx;                      /* for both; must outlive the guard */
} mem_guard_options;

/* NULL when out of memory or no thread can be started. */
mem_guard *mem_guard_start(const mem_guard_options *opt);
/* Joins the thread (no callback runs after it returns). NULL is a no-op. */
void mem_guard_stop(mem_guard *g);

/* True while new calls must be refused; false for NULL. */
bool mem_guard_shedding(const mem_guard *g);

/* Samples taken so far (each one a decision made); 0 for NULL. */
long long mem_guard_samples(const mem_guard *g);

/* The decision, apart from the thread: shed above the limit, stop once RSS
 * is back under 90% of it (so it does not flap at the edge). */
bool mem_guard_decide(bool shedding, int64_t rss, int64_t limit);

/* RSS of this process in bytes, or -1. */
int64_t mem_guard_rss(void);

#endif
