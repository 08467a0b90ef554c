/* See periodic.h. */
#include "core/periodic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

struct periodic {
  periodic_options opt;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled by kick and stop */
  bool stopping;     /* under mu; also read without it through `stop` */
  bool kicked;       /* under mu */
  atomic_bool stop;
  atomic_uint_fast64_t ticks;
};

/* Waits until `until` or stop; with kicks, also until a kick. Under mu. */
static void wait_until(periodic *p, const struct timespec *until, bool wake_on_kick) {
  while (!p->stopping && !(wake_on_kick && p->kicked) &&
         pthread_cond_timedwait(&p->cv, &p->mu, until) == 0) {
  }
}

static void *periodic_main(void *arg) {
  periodic *p = arg;
  if (p->opt.name) pthread_setname_np(pthread_self(), p->opt.name);
  pthread_mutex_lock(&p->mu);
  while (!p->stopping) {
    p->kicked = false;
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_add(&p->ticks, 1);
    int64_t wait = p->opt.tick(p, p->opt.arg);
    if (wait < 0) wait = p->opt.interval_ms;
    pthread_mutex_lock(&p->mu);
    /* However often kicks come, a gap; then up to a whole interval. */
    struct timespec gap, period;
    clock_mono_deadline(&gap, p->opt.min_gap_ms);
    clock_mono_deadline(&period, wait);
    if (p->opt.min_gap_ms > 0) wait_until(p, &gap, false);
    wait_until(p, &period, true);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int periodic_start(const periodic_options *opt, periodic **out) {
  *out = NULL;
  if (!opt || !opt->tick || opt->interval_ms <= 0 || opt->min_gap_ms < 0) return -1;
  periodic *p = calloc(1, sizeof *p);
  if (!p) return -1;
  p->opt = *opt;
  atomic_init(&p->stop, false);
  atomic_init(&p->ticks, 0);
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) goto fail_alloc;
  int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (rc == 0) rc = pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) goto fail_alloc;
  if (pthread_mutex_init(&p->mu, NULL) != 0) goto fail_cv;
  if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) goto fail_mu;
  *out = p;
  return 0;
fail_mu:
  pthread_mutex_destroy(&p->mu);
fail_cv:
  pthread_cond_destroy(&p->cv);
fail_alloc:
  free(p);
  return -1;
}

void periodic_stop(periodic *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  atomic_store(&p->stop, true);
  pthread_mutex_unlock(&p->mu);
  /* Outside the lock: on_stop takes the owner's locks, which a tick may
   * hold while it asks periodic_stopping. */
  if (p->opt.on_stop) p->opt.on_stop(p->opt.arg);
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

void periodic_kick(periodic *p) {
  pthread_mutex_lock(&p->mu);
  p->kicked = true;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

bool periodic_sleep(periodic *p, int64_t ms) {
  struct timespec until;
  clock_mono_deadline(&until, ms);
  pthread_mutex_lock(&p->mu);
  wait_until(p, &until, false);
  bool s = p->stopping;
  pthread_mutex_unlock(&p->mu);
  return s;
}

bool periodic_stopping(periodic *p) { return atomic_load(&p->stop); }

uint64_t periodic_ticks(periodic *p) { return (uint64_t)atomic_load(&p->ticks); }
