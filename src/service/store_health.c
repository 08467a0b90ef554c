/* The store-to-health watcher; see store_health.h. It only reads the
 * store's cached answer (store_healthy() never blocks on the network), so
 * one thread serves any store; health_set notifies Watch streams only when
 * the status changes, and does nothing once shutdown has begun. */
#include "service/store_health.h"

#include <stdlib.h>
#include <string.h>

#include "core/periodic.h"

struct store_health {
  store *s;
  health_state *h;
  char *service;
  periodic *thread;
};

static int64_t watch_tick(periodic *p, void *arg) {
  (void)p;
  store_health *w = arg;
  bool ok = store_healthy(w->s);
  health_set(w->h, w->service, ok ? HEALTH_SERVING : HEALTH_NOT_SERVING);
  return PERIODIC_INTERVAL;
}

store_health *store_health_start(store *s, health_state *h, const char *service,
                                 int interval_ms) {
  store_health *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  w->s = s;
  w->h = h;
  w->service = strdup(service);
  periodic_options po = {
      .name = "store-health",
      .tick = watch_tick,
      .arg = w,
      .interval_ms = interval_ms > 0 ? interval_ms : STORE_HEALTH_INTERVAL_MS,
  };
  if (!w->service || periodic_start(&po, &w->thread) != 0) {
    free(w->service);
    free(w);
    return NULL;
  }
  return w;
}

void store_health_stop(store_health *w) {
  if (!w) return;
  periodic_stop(w->thread);
  free(w->service);
  free(w);
}
