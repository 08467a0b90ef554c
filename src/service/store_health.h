#ifndef PRODUCT_SERVICE_STORE_HEALTH_H
#define PRODUCT_SERVICE_STORE_HEALTH_H
/* Ties a service's health status to the store's: a thread asks
 * store_healthy() every interval and sets the service NOT_SERVING while the
 * store does not answer (a PostgreSQL outage), SERVING again once it does.
 * Service "" is never touched: the process itself stays alive, so a
 * liveness probe does not restart it for an outage it cannot fix. */
#include "store/store.h"
#include "service/health.h"

#define STORE_HEALTH_INTERVAL_MS 1000

typedef struct store_health store_health;

/* Starts watching s for `service` (copied). s and h must outlive the
 * watcher. Returns NULL when out of memory or no thread can be started. */
store_health *store_health_start(store *s, health_state *h, const char *service,
                                 int interval_ms);
/* Stops and joins the thread; NULL is a no-op. */
void store_health_stop(store_health *w);

#endif
