#ifndef PRODUCT_STORE_STORE_POSTGRES_INTERNAL_H
#define PRODUCT_STORE_STORE_POSTGRES_INTERNAL_H
/* Shared between store_postgres.c (connections, pool, probe, schema, open)
 * and store_postgres_ops.c (the five operations). Private to those two. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* One pooled connection: used by one call at a time. db is NULL while it is
 * not connected; it (re)connects on the next use once PostgreSQL answers. */
typedef struct pg_conn {
  PGconn *db;
  struct pg_conn *next_free;
} pg_conn;

#define PG_MAX_PARAMS 9 /* connection keywords we pass, the URI included */

typedef struct pg_store {
  store base;
  char *uri;      /* as given; handed to libpq as dbname with expand_dbname */
  char *safe_uri; /* the URI with its password redacted, for log lines */
  const char *kw[PG_MAX_PARAMS + 1], *val[PG_MAX_PARAMS + 1];

  pthread_mutex_t pool_mu;
  pthread_cond_t pool_cv;
  pg_conn *conns;
  size_t n_conns;
  pg_conn *free_list;

  /* up: PostgreSQL answered the probe's last query and the schema is
   * current. While it is false calls fail fast with STORE_UNAVAILABLE. */
  atomic_bool up;
  atomic_bool migrated;
  atomic_llong probe_started_ns; /* monotonic; 0 when no probe runs */

  struct periodic *prober; /* core/periodic.h; NULL until open starts it */
  PGconn *probe_db; /* the probe's own connection (never pooled) */
  bool down_logged; /* the current outage has been logged */
  atomic_int connect_mode; /* 1: our connect loop, 2: libpq's, 0: not known yet */
  int64_t last_purge_ns; /* the probe's: when it last dropped expired request ids */
} pg_store;

/* How long a call's statement may take before the call ends UNAVAILABLE and
 * its connection is dropped: a server that stopped answering (hung, or a
 * path that lost packets without a reset) must not hold worker threads. */
#define PG_CALL_TIMEOUT_MS 10000
/* Schema migrations (they may wait for another replica's). */
#define PG_MIGRATE_TIMEOUT_MS 60000

/* Waits up to timeout_ms for the results of what was just sent on db and
 * returns the last (or the first failed) one, for the caller to PQclear; NULL
 * when none came in time or the connection failed. After NULL the
 * connection may still be busy: only PQfinish is safe on it
 * (pg_release does that). */
PGresult *pg_wait(PGconn *db, int timeout_ms);
/* PQexec / PQexecParams (n > 0) / PQexecPrepared (prepared), bounded by
 * timeout_ms through pg_wait. With n == 0, sql may hold several statements. */
PGresult *pg_exec(PGconn *db, int timeout_ms, const char *sql, int n, const char *const *params);
PGresult *pg_exec_prepared(PGconn *db, const char *name, int n, const char *const *params);

/* Connects with the store's parameters; the result may be in
 * CONNECTION_BAD state (never NULL unless out of memory). Also sets the
 * session up (extra_float_digits) and, when `prepare`, prepares the
 * statements of store_postgres_ops.c. Returns NULL on any failure, with the
 * first line of libpq's message in why. */
PGconn *pg_connect(pg_store *s, bool prepare, char *why, size_t whylen);

/* Prepares every named statement store_postgres_ops.c uses on db. */
int pg_prepare_statements(PGconn *db);

/* The status a failed result means: UNAVAILABLE for a lost connection or a
 * transient server state (shutdown, too many connections, serialization
 * failure, read-only standby), ERROR otherwise. r may be NULL. */
store_status pg_classify(PGconn *db, const PGresult *r);

/* A pooled connection that is connected and prepared, or NULL with *st set
 * (STORE_UNAVAILABLE while PostgreSQL does not answer). */
pg_conn *pg_acquire(pg_store *s, store_status *st);
/* Returns c to the pool. A connection left inside a transaction is rolled
 * back; one that is broken is closed (it reconnects on its next use) and
 * the probe is woken to look at PostgreSQL at once. */
void pg_release(pg_store *s, pg_conn *c);

/* The operations (store_postgres_ops.c). */
store_status pg_create(store *base, const product *p);
store_status pg_get(store *base, const char *id, arena *a, product *out);
store_status pg_update(store *base, const char *id, const product_patch *patch, arena *a,
                       product *out);
store_status pg_remove(store *base, const char *id, const int64_t *if_updated_us);
store_status pg_create_once(store *base, const product *p, const store_request *req, arena *a,
                            product *out);
/* The probe: one bounded DELETE of expired request ids on db; false when
 * it did not answer in time or failed. */
bool pg_purge_requests(PGconn *db);
store_status pg_list(store *base, const struct filter *f, const store_cursor *after,
                     size_t limit, arena *a, store_list_result *out);

#endif
