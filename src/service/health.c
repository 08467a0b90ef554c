/* Health state and the Check handler; see health.h. Watch streams live in
 * the server edge, src/transport/health_watch.c. */
#include "service/health.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "service/env.h"

#define HEALTH_MAX_SERVICES 8

typedef struct health_entry {
  char *name;
  health_status status;
} health_entry;

struct health_state {
  pthread_mutex_t mu; /* guards entries and the watcher list */
  health_entry entries[HEALTH_MAX_SERVICES];
  size_t n;
  health_watcher *watchers;
  size_t n_watchers;
  bool finished;
  bool overloaded; /* every named service reads NOT_SERVING while set */
};

health_state *health_state_create(const char *const *services, size_t n) {
  if (n + 1 > HEALTH_MAX_SERVICES) return NULL;
  health_state *h = calloc(1, sizeof(*h));
  if (!h) return NULL;
  pthread_mutex_init(&h->mu, NULL);
  h->entries[0].name = strdup("");
  h->entries[0].status = HEALTH_SERVING;
  h->n = 1;
  if (!h->entries[0].name) goto fail;
  for (size_t i = 0; i < n; i++) {
    h->entries[h->n].name = strdup(services[i]);
    h->entries[h->n].status = HEALTH_SERVING;
    if (!h->entries[h->n].name) goto fail;
    h->n++;
  }
  return h;
fail:
  health_state_destroy(h);
  return NULL;
}

void health_state_destroy(health_state *h) {
  if (!h) return;
  for (size_t i = 0; i < h->n; i++) free(h->entries[i].name);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static health_entry *find(health_state *h, const char *service, size_t len) {
  for (size_t i = 0; i < h->n; i++) {
    if (strlen(h->entries[i].name) == len && memcmp(h->entries[i].name, service, len) == 0)
      return &h->entries[i];
  }
  return NULL;
}

static health_status status_locked(health_state *h, const char *service, size_t len) {
  health_entry *e = find(h, service, len);
  if (!e) return HEALTH_SERVICE_UNKNOWN;
  if (h->overloaded && e != &h->entries[0]) return HEALTH_NOT_SERVING;
  return e->status;
}

static void notify_all(health_state *h, bool finish) {
  for (health_watcher *w = h->watchers; w; w = w->next)
    w->notify(w, status_locked(h, w->service, w->service_len), finish);
}

void health_set(health_state *h, const char *service, health_status st) {
  pthread_mutex_lock(&h->mu);
  health_entry *e = find(h, service, strlen(service));
  if (e && e->status != st && !h->finished) {
    e->status = st;
    notify_all(h, false);
  }
  pthread_mutex_unlock(&h->mu);
}

void health_set_overloaded(health_state *h, bool overloaded) {
  pthread_mutex_lock(&h->mu);
  if (h->overloaded != overloaded && !h->finished) {
    h->overloaded = overloaded;
    notify_all(h, false);
  }
  pthread_mutex_unlock(&h->mu);
}

health_status health_get(health_state *h, const char *service, size_t len) {
  pthread_mutex_lock(&h->mu);
  health_status st = status_locked(h, service, len);
  pthread_mutex_unlock(&h->mu);
  return st;
}

health_watch_result health_watch_add(health_state *h, health_watcher *w, health_status *now) {
  pthread_mutex_lock(&h->mu);
  health_watch_result r = h->finished                          ? HEALTH_WATCH_FINISHED
                          : h->n_watchers >= HEALTH_MAX_WATCHERS ? HEALTH_WATCH_FULL
                                                                 : HEALTH_WATCH_ADDED;
  bool ok = r == HEALTH_WATCH_ADDED;
  *now = ok ? status_locked(h, w->service, w->service_len) : HEALTH_NOT_SERVING;
  if (ok) {
    h->n_watchers++;
    w->prev = NULL;
    w->next = h->watchers;
    if (h->watchers) h->watchers->prev = w;
    h->watchers = w;
  }
  pthread_mutex_unlock(&h->mu);
  return r;
}

void health_watch_remove(health_state *h, health_watcher *w) {
  pthread_mutex_lock(&h->mu);
  if (w->prev) w->prev->next = w->next;
  else if (h->watchers == w) h->watchers = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
  h->n_watchers--;
  pthread_mutex_unlock(&h->mu);
}

void health_finish(health_state *h) {
  pthread_mutex_lock(&h->mu);
  if (!h->finished) {
    for (size_t i = 0; i < h->n; i++) h->entries[i].status = HEALTH_NOT_SERVING;
    notify_all(h, false);
    h->finished = true;
    notify_all(h, true);
  }
  pthread_mutex_unlock(&h->mu);
}

/* ----------------------------------------------------------------- Check --- */

static void health_check(call_ctx *c) {
  const Grpc__Health__V1__HealthCheckRequest *req =
      (const Grpc__Health__V1__HealthCheckRequest *)c->request;
  const char *service = req->service ? req->service : "";
  health_status st = health_get(c->env->health, service, strlen(service));
  if (st == HEALTH_SERVICE_UNKNOWN) {
    call_fail(c, RPC_NOT_FOUND, "unknown service");
    return;
  }
  Grpc__Health__V1__HealthCheckResponse *resp = call_alloc(c, sizeof(*resp));
  grpc__health__v1__health_check_response__init(resp);
  resp->status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  call_reply(c, &resp->base);
}

const method_desc health_check_method = {
    .path = "/grpc.health.v1.Health/Check",
    .service = "grpc.health.v1.Health",
    .name = "Check",
    .request = &grpc__health__v1__health_check_request__descriptor,
    .response = &grpc__health__v1__health_check_response__descriptor,
    .handler = health_check,
    .policy = POLICY_PUBLIC,
    .index = -1,
};
