/* The store-to-health watcher; see store_health.h. It only reads the
 * store's cached answer (store_healthy() never blocks on the network), so
 * one thread serves any store; health_set notifies Watch streams only when
 * the status changes, and does nothing once shutdown has begun. */
#include "service/store_health.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct store_health {
  store *s;
  health_state *h;
  char *service;
  int interval_ms;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC */
  bool stopping;
};

static void *watch_main(void *arg) {
  store_health *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stopping) {
    pthread_mutex_unlock(&w->mu);
    bool ok = store_healthy(w->s);
    health_set(w->h, w->service, ok ? HEALTH_SERVING : HEALTH_NOT_SERVING);
    pthread_mutex_lock(&w->mu);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (long long)(w->interval_ms % 1000) * 1000000;
    until.tv_sec += w->interval_ms / 1000 + (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

store_health *store_health_start(store *s, health_state *h, const char *service,
                                 int interval_ms) {
  store_health *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  w->s = s;
  w->h = h;
  w->interval_ms = interval_ms > 0 ? interval_ms : STORE_HEALTH_INTERVAL_MS;
  w->service = strdup(service);
  if (!w->service) {
    free(w);
    return NULL;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->mu, NULL);
  if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->service);
    free(w);
    return NULL;
  }
  return w;
}

void store_health_stop(store_health *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w->service);
  free(w);
}
