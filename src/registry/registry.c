/* The registration thread. Its life is a loop: grant a lease and put the key
 * (a "session"), keep the lease alive on a LeaseKeepAlive stream until the
 * stream or the lease is lost, back off, start again with a new lease. Stop
 * interrupts the thread's etcd client from the main thread (the one
 * cross-thread call, under the registry's mutex), which cancels whatever
 * call or stream is in flight; the thread then revokes the lease and exits.
 *
 * The thread is a core/periodic.h worker: one round (a session, or a failed
 * attempt) per tick, and the backoff is the wait the round asks for.
 *
 * Every wait is bounded: calls by REG_CALL_TIMEOUT_MS and by stop, backoff
 * waits by the periodic's stop, the stream by stop. */
#include "registry/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/periodic.h"
#include "core/rpc_status.h"
#include "registry/etcd.h"

#define REG_BACKOFF_MIN_MS 500
#define REG_BACKOFF_MAX_MS 5000
/* Grant and Put wait this long for etcd (for a connection too); stop ends
 * the wait at once. */
#define REG_CALL_TIMEOUT_MS 2000
/* Revoking an old lease after a new registration: short, since the new
 * lease's first keep-alive waits for it. */
#define REG_REVOKE_TIMEOUT_MS 1000
/* Revoking at shutdown delays the drain by at most this much for an etcd
 * that does not answer: one that answers does so in milliseconds, one busy
 * committing (or a server slowed by a loaded host) is given a few seconds
 * before the key is left to its TTL. */
#define REG_STOP_REVOKE_TIMEOUT_MS 5000
#define REG_SEND_WAIT_MS 1000
/* Failed attempts in a row are logged at the first and then every Nth
 * (about once a minute at the backoff cap), so an outage does not flood. */
#define REG_LOG_EVERY 12

/* What the thread knows about etcd; only the thread touches it. */
typedef struct session {
  etcd_client *ec;
  int64_t lease;     /* the lease our key is attached to; 0 = not registered */
  int64_t ttl_s;     /* as granted */
  int64_t stale;     /* a lost session's lease, revoked once a new one holds the key */
  int64_t unsure;    /* granted, but the put failed: it may hold the key */
  int failures;      /* attempts that failed in a row */
  bool registered_before;
} session;

struct registry {
  char **endpoints;
  size_t n_endpoints;
  size_t current; /* the endpoint in use; the next one after a failure */
  char *key;
  char *value;
  int64_t ttl_s;
  int64_t backoff_min_ms, backoff_max_ms;
  registry_pause_fn on_pause;
  void *on_pause_arg;

  periodic *thread;  /* runs registry_round until stop */
  pthread_mutex_t mu;
  bool stopping;     /* under mu; set by stop (on_stop) */
  etcd_client *ec;   /* the thread's client, published under mu for stop */
  session sess;      /* the thread's, then stop's once the thread is joined */
  int64_t backoff;   /* the thread's */
};


int64_t registry_next_backoff(int64_t current, int64_t min, int64_t max) {
  if (current < min)
    return min;
  return current > max / 2 ? max : current * 2;
}

/* The wait before the next round: the pause hook hears of it first. */
static int64_t back_off(registry *r) {
  if (r->on_pause)
    r->on_pause(r->on_pause_arg, r->backoff);
  return r->backoff;
}

static int64_t now_ms(void) { return clock_mono_ns() / 1000000; }

static bool is_stopping(registry *r) {
  pthread_mutex_lock(&r->mu);
  bool s = r->stopping;
  pthread_mutex_unlock(&r->mu);
  return s;
}


static void lease_hex(int64_t id, char *buf, size_t n) {
  snprintf(buf, n, "%016" PRIx64, (uint64_t)id); /* as etcdctl prints lease IDs */
}

static void log_event(log_level level, const char *msg, const registry *r, const session *s,
                      int64_t lease, const char *error) {
  log_line l;
  char hex[24];
  log_line_begin(&l, level, msg);
  log_line_str(&l, "key", r->key);
  if (s->ec)
    log_line_str(&l, "endpoint", etcd_client_endpoint(s->ec));
  if (lease) {
    lease_hex(lease, hex, sizeof hex);
    log_line_str(&l, "lease_id", hex);
  }
  if (error)
    log_line_str(&l, "error", error);
  log_line_emit(&l);
}

/* A client for the current endpoint, when there is none. It is published
 * for stop; created after stop, it starts interrupted. */
static int connect_current(registry *r, session *s, char *err, size_t errlen) {
  if (s->ec)
    return 0;
  /* Calls wait for a connection (until their deadline or stop), so that a
   * registration goes through as soon as etcd is back; the channel's own
   * reconnect backoff is capped like ours. */
  etcd_client_options o = {
      .endpoint = r->endpoints[r->current],
      .wait_for_ready = true,
      .reconnect_backoff_max_ms = (int)r->backoff_max_ms,
  };
  if (etcd_client_create(&o, &s->ec, err, errlen) != 0)
    return -1;
  pthread_mutex_lock(&r->mu);
  r->ec = s->ec;
  if (r->stopping)
    etcd_client_interrupt(s->ec);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

static void disconnect(registry *r, session *s) {
  pthread_mutex_lock(&r->mu);
  r->ec = NULL;
  pthread_mutex_unlock(&r->mu);
  etcd_client_destroy(s->ec);
  s->ec = NULL;
}

/* Moves to the next endpoint (a new channel) after a failure. */
static void rotate(registry *r, session *s) {
  if (r->n_endpoints < 2)
    return; /* one channel keeps reconnecting by itself */
  disconnect(r, s);
  r->current = (r->current + 1) % r->n_endpoints;
}

/* Grant a lease and put the key on it. */
static int register_once(registry *r, session *s, char *err, size_t errlen) {
  if (connect_current(r, s, err, errlen) != 0)
    return -1;
  int64_t id = 0, ttl = 0;
  if (etcd_lease_grant(s->ec, r->ttl_s, REG_CALL_TIMEOUT_MS, &id, &ttl, err, errlen) != 0)
    return -1;
  /* A put that failed may still have been applied (the reply was lost):
   * the lease is revoked later like a stale one. */
  if (etcd_put(s->ec, r->key, r->value, id, REG_CALL_TIMEOUT_MS, err, errlen) != 0) {
    s->unsure = id;
    return -1;
  }
  s->lease = id;
  s->ttl_s = ttl > 0 ? ttl : r->ttl_s;
  return 0;
}

/* Refreshes the lease every third of its TTL until the stream ends, the
 * lease is gone, etcd stops answering for a whole TTL, or stop. *why says
 * which (for the log). */
static void keep_alive(session *s, char *why, size_t whylen) {
  etcd_keepalive *ka = NULL;
  if (etcd_keepalive_open(s->ec, &ka, why, whylen) != 0)
    return;

  int64_t ttl_ms = s->ttl_s * 1000;
  int64_t interval = ttl_ms / 3 > 500 ? ttl_ms / 3 : 500;
  int64_t next_send = now_ms(), last_reply = now_ms();
  bool ended = false;
  for (;;) {
    int64_t t = now_ms();
    if (t >= next_send) {
      if (etcd_keepalive_send(ka, s->lease, REG_SEND_WAIT_MS) != 0) {
        ended = true;
        break;
      }
      next_send = t + interval;
    }
    int64_t ttl = 0, wait = next_send - now_ms();
    etcd_keepalive_event ev = etcd_keepalive_recv(ka, wait > 0 ? wait : 1, &ttl);
    if (ev == ETCD_KEEPALIVE_ENDED) {
      ended = true;
      break;
    }
    if (ev == ETCD_KEEPALIVE_RESPONSE) {
      if (ttl <= 0) {
        snprintf(why, whylen, "the lease expired");
        break;
      }
      last_reply = now_ms();
    } else if (now_ms() - last_reply > ttl_ms) {
      snprintf(why, whylen, "no keep-alive reply for %" PRId64 " s", s->ttl_s);
      break;
    }
  }

  char status[256];
  etcd_keepalive_close(ka, status, sizeof status);
  if (ended)
    snprintf(why, whylen, "keep-alive stream ended: %s", status);
}

/* Best effort at the end or after a new registration; logs the outcome.
 * False when etcd did not answer (a lease that is gone already is fine). */
static bool revoke(registry *r, session *s, int64_t *lease, const char *what, int timeout_ms) {
  if (!*lease)
    return true;
  char err[256];
  int code = etcd_lease_revoke(s->ec, *lease, timeout_ms, err, sizeof err);
  if (code == RPC_OK)
    log_event(LOG_INFO, what, r, s, *lease, NULL);
  else if (code != RPC_NOT_FOUND)
    log_event(LOG_WARN, "etcd: cannot revoke the lease", r, s, *lease, err);
  *lease = 0;
  return code == RPC_OK || code == RPC_NOT_FOUND;
}

/* One round: register, keep the lease alive until it is lost, and ask for
 * the backoff before the next round. */
static int64_t registry_round(periodic *p, void *arg) {
  (void)p;
  registry *r = arg;
  session *s = &r->sess;
  char err[512];
  if (register_once(r, s, err, sizeof err) != 0) {
    s->failures++;
    r->backoff = registry_next_backoff(r->backoff, r->backoff_min_ms, r->backoff_max_ms);
    if (s->failures == 1 || s->failures % REG_LOG_EVERY == 0) {
      log_line l;
      log_line_begin(&l, LOG_WARN, "etcd: registration failed, retrying");
      log_line_str(&l, "key", r->key);
      log_line_str(&l, "endpoint", r->endpoints[r->current]);
      log_line_str(&l, "error", err);
      log_line_int(&l, "attempt", s->failures);
      log_line_int(&l, "retry_in_ms", r->backoff);
      log_line_emit(&l);
    }
    rotate(r, s);
    return back_off(r);
  }
  log_event(LOG_INFO, s->registered_before ? "etcd: registered again" : "etcd: registered", r,
            s, s->lease, NULL);
  s->registered_before = true;
  s->failures = 0;
  r->backoff = 0;
  /* Leases of earlier sessions may still be alive in etcd; they hold
   * nothing of ours now. */
  revoke(r, s, &s->stale, "etcd: old lease revoked", REG_REVOKE_TIMEOUT_MS);
  revoke(r, s, &s->unsure, "etcd: old lease revoked", REG_REVOKE_TIMEOUT_MS);

  char why[320] = "stopped";
  keep_alive(s, why, sizeof why);
  if (is_stopping(r))
    return PERIODIC_INTERVAL; /* the periodic is stopping too: no wait */
  log_event(LOG_WARN, "etcd: registration lost, registering again", r, s, s->lease, why);
  s->stale = s->lease;
  s->lease = 0;
  r->backoff = registry_next_backoff(r->backoff, r->backoff_min_ms, r->backoff_max_ms);
  rotate(r, s);
  return back_off(r);
}

/* periodic_stop's hook, before the join: the call or stream in flight
 * ends now. */
static void registry_interrupt(void *arg) {
  registry *r = arg;
  pthread_mutex_lock(&r->mu);
  r->stopping = true;
  if (r->ec)
    etcd_client_interrupt(r->ec);
  pthread_mutex_unlock(&r->mu);
}

/* Stop, once the thread is joined: the key goes first, before the server
 * drains. Without a live session, a lost session's lease (if etcd never
 * noticed the loss) or an unsure one may still hold it. One unanswered
 * revoke ends the attempt. */
static void deregister(registry *r) {
  session *s = &r->sess;
  char err[512];
  if ((s->lease || s->stale || s->unsure) && connect_current(r, s, err, sizeof err) == 0) {
    etcd_client_resume(s->ec); /* stop interrupted it; these calls are the last */
    const char *msg = "etcd: lease revoked, deregistered";
    if (s->lease)
      revoke(r, s, &s->lease, msg, REG_STOP_REVOKE_TIMEOUT_MS);
    else if (revoke(r, s, &s->stale, msg, REG_STOP_REVOKE_TIMEOUT_MS))
      revoke(r, s, &s->unsure, msg, REG_STOP_REVOKE_TIMEOUT_MS);
  }
  disconnect(r, s);
}

static void registry_free(registry *r) {
  if (!r)
    return;
  if (r->endpoints) {
    for (size_t i = 0; i < r->n_endpoints; i++)
      free(r->endpoints[i]);
    free(r->endpoints);
  }
  free(r->key);
  free(r->value);
  free(r);
}

int registry_start(const registry_options *opt, registry **out, char *err, size_t errlen) {
  *out = NULL;
  if (!opt || !opt->endpoints || opt->n_endpoints == 0 || !opt->advertise ||
      !opt->advertise[0]) {
    snprintf(err, errlen, "etcd registration needs an endpoint and an advertise address");
    return -1;
  }
  registry *r = calloc(1, sizeof *r);
  if (!r)
    goto oom;
  r->ttl_s = opt->ttl_s > 0 ? opt->ttl_s : REGISTRY_DEFAULT_TTL_S;
  r->backoff_min_ms = opt->backoff_min_ms > 0 ? opt->backoff_min_ms : REG_BACKOFF_MIN_MS;
  r->backoff_max_ms = opt->backoff_max_ms > 0 ? opt->backoff_max_ms : REG_BACKOFF_MAX_MS;
  if (r->backoff_max_ms < r->backoff_min_ms)
    r->backoff_max_ms = r->backoff_min_ms;
  r->on_pause = opt->on_pause;
  r->on_pause_arg = opt->on_pause_arg;
  r->endpoints = calloc(opt->n_endpoints, sizeof *r->endpoints);
  if (!r->endpoints)
    goto oom;
  for (; r->n_endpoints < opt->n_endpoints; r->n_endpoints++)
    if (!(r->endpoints[r->n_endpoints] = strdup(opt->endpoints[r->n_endpoints])))
      goto oom;
  size_t klen = strlen(REGISTRY_KEY_PREFIX) + strlen(opt->advertise) + 1;
  r->key = malloc(klen);
  r->value = strdup(opt->advertise);
  if (!r->key || !r->value)
    goto oom;
  snprintf(r->key, klen, "%s%s", REGISTRY_KEY_PREFIX, opt->advertise);

  if (strncmp(opt->advertise, "0.0.0.0:", 8) == 0 || strncmp(opt->advertise, "[::]:", 5) == 0) {
    log_line l;
    log_line_begin(&l, LOG_WARN, "etcd: the advertise address is a wildcard; clients cannot dial "
                                 "it (set --advertise-addr)");
    log_line_str(&l, "advertise_addr", opt->advertise);
    log_line_emit(&l);
  }

  if (pthread_mutex_init(&r->mu, NULL) != 0)
    goto oom;
  periodic_options po = {.name = "etcd-register",
                         .tick = registry_round,
                         .arg = r,
                         .interval_ms = REG_BACKOFF_MIN_MS, /* unused: a round names its wait */
                         .on_stop = registry_interrupt};
  if (periodic_start(&po, &r->thread) != 0) {
    pthread_mutex_destroy(&r->mu);
    registry_free(r);
    snprintf(err, errlen, "cannot start the etcd registration thread");
    return -1;
  }
  *out = r;
  return 0;
oom:
  registry_free(r);
  snprintf(err, errlen, "out of memory");
  return -1;
}

void registry_stop(registry *r) {
  if (!r)
    return;
  periodic_stop(r->thread); /* registry_interrupt, then the join */
  deregister(r);
  pthread_mutex_destroy(&r->mu);
  registry_free(r);
}
