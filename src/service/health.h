#ifndef PRODUCT_SERVICE_HEALTH_H
#define PRODUCT_SERVICE_HEALTH_H
/* grpc.health.v1 serving state, shared by every server in the process, and
 * the watchers (Watch streams) to notify when it changes. */
#include <stdbool.h>
#include <stddef.h>

#include "core/call.h"

/* Values of grpc.health.v1.HealthCheckResponse.ServingStatus. */
typedef enum health_status {
  HEALTH_UNKNOWN = 0,
  HEALTH_SERVING = 1,
  HEALTH_NOT_SERVING = 2,
  HEALTH_SERVICE_UNKNOWN = 3,
} health_status;

typedef struct health_state health_state;

/* A Watch stream's hook: called with the state locked, from any thread,
 * when a status changes, with the watched service's status now (finish = the
 * server is shutting down). It must not call back into health_*. */
typedef struct health_watcher {
  void (*notify)(struct health_watcher *w, health_status now, bool finish);
  const char *service; /* watched service (NUL-terminated, owned by the watcher) */
  size_t service_len;
  struct health_watcher *prev, *next;
} health_watcher;

/* The services answered besides "" (which is always known). */
health_state *health_state_create(const char *const *services, size_t n);
void health_state_destroy(health_state *h);

void health_set(health_state *h, const char *service, health_status st);
/* While overloaded (shedding load), every service but "" reads NOT_SERVING
 * whatever was set for it; "" stays as it is, so a liveness probe does not
 * restart a process that is only busy. */
void health_set_overloaded(health_state *h, bool overloaded);
/* Status of service[0..len); HEALTH_SERVICE_UNKNOWN when not known. */
health_status health_get(health_state *h, const char *service, size_t len);

typedef enum health_watch_result {
  HEALTH_WATCH_ADDED = 0,
  HEALTH_WATCH_FINISHED, /* shutting down: nothing added, *now is NOT_SERVING */
  HEALTH_WATCH_FULL,     /* HEALTH_MAX_WATCHERS streams already watch */
} health_watch_result;

/* Watch streams are public: their number is capped so that clients cannot
 * grow the list (walked under the lock on every change) without bound. */
#define HEALTH_MAX_WATCHERS 1000

/* Adds a watcher and reports its service's status at that moment, in one
 * step so no change is missed. */
health_watch_result health_watch_add(health_state *h, health_watcher *w, health_status *now);
void health_watch_remove(health_state *h, health_watcher *w);
/* Shutdown: every service NOT_SERVING, then every watcher told to finish. */
void health_finish(health_state *h);

/* grpc.health.v1.Health/Check as a method-table row (public, unary). */
extern const method_desc health_check_method;

#endif
