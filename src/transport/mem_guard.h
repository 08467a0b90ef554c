#ifndef PRODUCT_TRANSPORT_MEM_GUARD_H
#define PRODUCT_TRANSPORT_MEM_GUARD_H
/* The memory guard: a thread samples the process's RSS every interval and,
 * above the limit, sets the shedding flag that new calls read (one relaxed
 * atomic load, no syscall per call) and holds health NOT_SERVING. It also
 * gives freed heap back to the system (malloc_trim) after a burst, which
 * glibc does not do by itself for memory freed in the middle of its arenas. */
#include <stdbool.h>
#include <stdint.h>

#include "service/health.h"

#define MEM_GUARD_INTERVAL_MS 100

typedef struct mem_guard mem_guard;

/* Called from the guard's thread once a second while shedding, to close
 * the connection that costs most (the guard's close_costliest). */
typedef void (*mem_guard_pressure_fn)(void *ctx);

/* limit_bytes 0: never shed (RSS is still sampled for the trim). h and
 * pressure may be NULL. NULL when out of memory or no thread can be
 * started. */
mem_guard *mem_guard_start(int64_t limit_bytes, health_state *h, int interval_ms,
                           mem_guard_pressure_fn pressure, void *ctx);
void mem_guard_stop(mem_guard *g); /* NULL is a no-op */

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
