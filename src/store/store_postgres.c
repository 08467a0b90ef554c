/* The PostgreSQL backend ("--store postgres://..."): one catalog shared by
 * many replicas. This file: connections, the pool, the probe, the schema and
 * open/close; the five operations are in store_postgres_ops.c.
 *
 * The URI goes to libpq as given (PQconnectdbParams with expand_dbname), so
 * sslmode, host=/run/postgresql sockets, multiple hosts and the PG*
 * environment variables behave as in psql. Around it we pass only defaults
 * the URI or environment can override (connect_timeout, application_name)
 * and one setting it cannot (client_encoding UTF8: our strings are UTF-8).
 *
 * Availability: a PostgreSQL that does not answer never stops the server.
 * A probe thread owns the question "does it answer?": every
 * STORE_POSTGRES_PROBE_MS (and at once when a call lost its connection) it
 * runs SELECT 1 on its own connection, first bringing the schema up to date
 * if that has not happened yet. healthy() reports its answer (so health can
 * say NOT_SERVING), and while the answer is no, calls fail fast with
 * STORE_UNAVAILABLE instead of each waiting for a connect timeout. A pooled
 * connection that PostgreSQL closed (restart, failover) is noticed before
 * use and replaced; a call whose connection dies under it gets
 * STORE_UNAVAILABLE, never a guess. Every wait on the server is bounded
 * (PG_CALL_TIMEOUT_MS), so a server that hangs cannot hold worker threads.
 *
 * Schema: the same schema_version table and forward-migration scheme as the
 * SQLite backend, applied in one transaction under an advisory lock, so
 * replicas that start together do not race to create tables. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/periodic.h"
#include "store/store_backends.h"
#include "store/store_postgres.h"
#include "store/store_postgres_internal.h"

#define PG_DEFAULT_POOL 4
#define PG_MAX_POOL 64
#define PG_CONNECT_TIMEOUT_S "5"
/* A probe that has not come back within this long counts as "no answer"
 * (a host that drops packets makes connect or SELECT 1 hang). */
#define PG_PROBE_STUCK_NS (3 * INT64_C(1000000000))
/* How long the probe waits for SELECT 1 on an open connection. */
#define PG_PROBE_QUERY_TIMEOUT_MS 2000
/* However often calls wake the probe, it runs at most this often. */
#define PG_PROBE_MIN_GAP_MS 200

/* Forward migrations: migration k takes a database from version k-1 to k.
 * Never edit a released one; append. Names and columns are the schema
 * contract in filter.h. Ids and categories compare byte-wise (COLLATE "C"),
 * as in the other backends, whatever the database's locale; names and
 * descriptions keep the default (deterministic) collation. */
static const char *const pg_migrations[STORE_POSTGRES_SCHEMA_VERSION] = {
    /* 1: products and their ordered categories; deleting a product deletes
     * its categories in the same statement. */
    "CREATE TABLE products ("
    "  id TEXT COLLATE \"C\" NOT NULL PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  price DOUBLE PRECISION NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  updated_us BIGINT NOT NULL);"
    "CREATE INDEX products_by_created ON products (created_us, id);"
    "CREATE TABLE product_categories ("
    "  product_id TEXT COLLATE \"C\" NOT NULL REFERENCES products (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  value TEXT COLLATE \"C\" NOT NULL,"
    "  PRIMARY KEY (product_id, position));"
    "CREATE INDEX product_categories_by_value ON product_categories (value, product_id);",
    /* 2: a maintained product count, so an unfiltered total is O(1) instead
     * of a scan on every ListProducts (as SQLite's version 2). Sharded by
     * backend: one counter row would serialise every create and delete of
     * every replica on its row lock until commit. A trigger keeps it in the
     * writing statement's transaction, so a list's snapshot sees the count
     * and the rows agree. */
    "CREATE TABLE product_count (shard INTEGER NOT NULL PRIMARY KEY, n BIGINT NOT NULL);"
    "INSERT INTO product_count (shard, n) SELECT s, 0 FROM generate_series(0, 63) AS s;"
    "UPDATE product_count SET n = (SELECT COUNT(*) FROM products) WHERE shard = 0;"
    "CREATE FUNCTION product_count_track() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  UPDATE product_count SET n = n + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END"
    "   WHERE shard = pg_backend_pid() % 64;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE TRIGGER products_count AFTER INSERT OR DELETE ON products"
    "  FOR EACH ROW EXECUTE FUNCTION product_count_track();",
    /* 3: CreateProduct's request ids, per caller. The primary key is what
     * makes two replicas racing with one id create one product: the second
     * insert waits for the first's commit and then conflicts. No foreign
     * key: a deleted product leaves its id behind (a retry answers
     * NOT_FOUND). Indexed by time for the purge. Products are unchanged:
     * the etag is made from updated_us. */
    "CREATE TABLE product_requests ("
    "  caller TEXT COLLATE \"C\" NOT NULL,"
    "  request_id TEXT COLLATE \"C\" NOT NULL,"
    "  fingerprint TEXT COLLATE \"C\" NOT NULL,"
    "  product_id TEXT COLLATE \"C\" NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  PRIMARY KEY (caller, request_id));"
    "CREATE INDEX product_requests_by_created ON product_requests (created_us);",
};

/* The first line of a libpq message (they end in '\n' and may run on). */
static void first_line(char *out, size_t outlen, const char *msg) {
  if (!out || outlen == 0) return;
  if (!msg || !*msg) msg = "no answer";
  size_t n = strcspn(msg, "\n");
  if (n >= outlen) n = outlen - 1;
  memcpy(out, msg, n);
  out[n] = '\0';
}

/* Server notices (CREATE ... IF NOT EXISTS and the like) would otherwise be
 * printed on stderr by libpq, where every line must be one JSON object. */
static void pg_ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

store_status pg_classify(PGconn *db, const PGresult *r) {
  if (!db || PQstatus(db) != CONNECTION_OK) return STORE_UNAVAILABLE;
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (!state) return r ? STORE_ERROR : STORE_UNAVAILABLE;
  /* 08: connection exception; 53: insufficient resources (too many
   * connections, disk full); 57: operator intervention (shutdown, cannot
   * connect now, statement timeout); 40001/40P01: retry the transaction;
   * 25006: a read-only standby (mid-failover). */
  if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
      strncmp(state, "57", 2) == 0 || strcmp(state, "40001") == 0 ||
      strcmp(state, "40P01") == 0 || strcmp(state, "25006") == 0)
    return STORE_UNAVAILABLE;
  return STORE_ERROR;
}

PGresult *pg_wait(PGconn *db, int timeout_ms) {
  int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
  PGresult *keep = NULL, *r;
  for (;;) {
    while (PQisBusy(db)) {
      int64_t left_ms = (deadline - clock_mono_ns()) / 1000000;
      struct pollfd p = {.fd = PQsocket(db), .events = POLLIN};
      int n = left_ms > 0 && p.fd >= 0 ? poll(&p, 1, (int)left_ms) : 0;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !PQconsumeInput(db)) {
        PQclear(keep);
        return NULL;
      }
    }
    if (!(r = PQgetResult(db))) return keep;
    if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
      PQclear(r); /* the first failure is the one to report */
    } else {
      PQclear(keep);
      keep = r;
    }
  }
}

/* Each round trip made for a call is a child span of it (core/call.h): a
 * trace shows how many a call took and which one was slow. Outside a call
 * (probes, schema set-up) none is recorded. */
static PGresult *traced_wait(PGconn *db, int timeout_ms, const char *what) {
  trace_child *span = call_span_begin("postgres.round_trip");
  if (span) span->attr_key = "db.statement", span->attr_value = what;
  PGresult *r = pg_wait(db, timeout_ms);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  call_span_end(span, st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK);
  return r;
}

PGresult *pg_exec(PGconn *db, int timeout_ms, const char *sql, int n, const char *const *params) {
  int sent = n > 0 ? PQsendQueryParams(db, sql, n, NULL, params, NULL, NULL, 0)
                   : PQsendQuery(db, sql);
  /* sql is ours (a constant or a statement built from our filter), and is
   * kept to the span's attribute size. */
  return sent ? traced_wait(db, timeout_ms, sql) : NULL;
}

PGresult *pg_exec_prepared(PGconn *db, const char *name, int n, const char *const *params) {
  if (!PQsendQueryPrepared(db, name, n, params, NULL, NULL, 0)) return NULL;
  return traced_wait(db, PG_CALL_TIMEOUT_MS, name);
}

/* One of the conninfo's values (URI, PG* variables, defaults), or NULL. */
static const char *conninfo_value(PQconninfoOption *opts, const char *keyword) {
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, keyword) == 0) return o->val && *o->val ? o->val : NULL;
  return NULL;
}

/* How long one attempt may take, in ms, read as libpq reads
 * connect_timeout: an integer with optional spaces around it, at least 2 s,
 * none (-1) when 0 or negative. -2: not a number (libpq refuses it). */
static int connect_budget_ms(const char *v) {
  if (!v) v = PG_CONNECT_TIMEOUT_S;
  char *end;
  errno = 0;
  long secs = strtol(v, &end, 10);
  if (end == v || errno != 0) return -2;
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
  if (*end) return -2;
  if (secs <= 0 || secs > INT_MAX / 1000) return -1;
  return (int)((secs < 2 ? 2 : secs) * 1000);
}

/* Whether the connection is left to libpq's own PQconnectdbParams: when
 * its conninfo names several hosts, or one name with several addresses.
 * libpq gives each host and each address its own connect_timeout and then
 * tries the next, and has no public way to make a caller's loop do that,
 * so there its failover matters more than a notice in the start-up.
 * Returns 1 (ours), 2 (libpq's) or 0 (undecided: the name did not resolve
 * now; libpq's this time, asked again at the next connect). */
static int connect_mode(PGconn *db) {
  PQconninfoOption *opts = PQconninfo(db);
  if (!opts) return 0;
  const char *host = conninfo_value(opts, "host"), *addr = conninfo_value(opts, "hostaddr");
  int mode = 1;
  if ((host && strchr(host, ',')) || (addr && strchr(addr, ','))) {
    mode = 2;
  } else if (connect_budget_ms(conninfo_value(opts, "connect_timeout")) == -2) {
    mode = 2; /* libpq's own error message */
  } else if (host && !addr && host[0] != '/' && host[0] != '@') {
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1) {
      struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
      struct addrinfo *res = NULL;
      if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        mode = 0;
      } else {
        mode = res && res->ai_next ? 2 : 1;
        freeaddrinfo(res);
      }
    }
  }
  PQconninfoFree(opts);
  return mode;
}

/* PQconnectdbParams with our notice processor in place before the first
 * byte is read: a PostgreSQL shutting down sends a WARNING ("terminating
 * connection due to immediate shutdown command") to a connection still in
 * its start-up, and libpq's default processor would print it on stderr,
 * where every line is JSON. Except where connect_mode leaves the connect
 * to libpq. Returns the connection in whatever state it reached;
 * *timed_out says our budget ran out first. */
static PGconn *pg_connect_libpq(pg_store *s) {
  PGconn *db = PQconnectdbParams(s->kw, s->val, 1);
  if (db) PQsetNoticeProcessor(db, pg_ignore_notice, NULL);
  return db;
}

static PGconn *pg_connect_quiet(pg_store *s, bool *timed_out) {
  *timed_out = false;
  int mode = atomic_load(&s->connect_mode);
  if (mode == 2) return pg_connect_libpq(s);
  PGconn *db = PQconnectStartParams(s->kw, s->val, 1);
  if (!db) return NULL;
  PQsetNoticeProcessor(db, pg_ignore_notice, NULL);
  if (PQstatus(db) == CONNECTION_BAD) return db;
  if (mode == 0) {
    mode = connect_mode(db);
    if (mode != 0) atomic_store(&s->connect_mode, mode);
    if (mode != 1) { /* only its first socket was opened */
      PQfinish(db);
      return pg_connect_libpq(s);
    }
  }
  PQconninfoOption *opts = PQconninfo(db);
  int budget = connect_budget_ms(conninfo_value(opts, "connect_timeout"));
  PQconninfoFree(opts);
  int64_t deadline = clock_mono_ns() + (int64_t)budget * 1000000;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING; /* as libpq's docs begin */
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    /* The socket can change between polls (SSL or GSS refused, retried). */
    struct pollfd p = {.fd = PQsocket(db),
                       .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
    int left = budget < 0 ? -1 : (int)((deadline - clock_mono_ns()) / 1000000);
    if (p.fd < 0) break;
    if (budget >= 0 && left <= 0) {
      *timed_out = true;
      break;
    }
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (n == 0) {
      *timed_out = true;
      break;
    }
    st = PQconnectPoll(db);
  }
  return db;
}

PGconn *pg_connect(pg_store *s, bool prepare, char *why, size_t whylen) {
  bool timed_out;
  PGconn *db = pg_connect_quiet(s, &timed_out);
  if (!db) {
    first_line(why, whylen, "out of memory");
    return NULL;
  }
  bool ok = PQstatus(db) == CONNECTION_OK;
  if (!ok && timed_out) {
    first_line(why, whylen, "timeout expired");
    PQfinish(db);
    return NULL;
  }
  if (ok) {
    /* Doubles as text round-trip exactly only with extra_float_digits > 0
     * (the default since PostgreSQL 12; older servers default to 0).
     * plan_cache_mode stays "auto" on purpose: a generic plan of the list
     * statement is made without LIMIT's value (and maybe before the table
     * has statistics) and can be a full scan and sort; a custom plan per
     * call costs ~0.4 ms and is always the index range
     * (bench/store_pg_bench.c measured both: docs/postgres.md). */
    PGresult *r = pg_exec(db, PG_CALL_TIMEOUT_MS, "SET extra_float_digits = 3", 0, NULL);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  if (ok && prepare) ok = pg_prepare_statements(db) == 0;
  if (!ok) {
    first_line(why, whylen, PQerrorMessage(db));
    PQfinish(db);
    return NULL;
  }
  return db;
}

/* Whether an idle connection is still there. PostgreSQL closes the socket
 * when it shuts down or restarts: then the socket reads EOF (often after a
 * FATAL message), which libpq turns into CONNECTION_BAD. Nothing has been
 * sent on it yet, so replacing it is safe. */
static bool pg_alive(PGconn *db) {
  /* One read may return the FATAL message (libpq hands it to the notice
   * processor and stays "OK"); the EOF behind it shows on the next. */
  for (int i = 0; i < 4; i++) {
    if (PQstatus(db) != CONNECTION_OK) return false;
    struct pollfd p = {.fd = PQsocket(db), .events = POLLIN};
    if (p.fd < 0) return false;
    int n = poll(&p, 1, 0);
    if (n == 0) return true;
    if (n < 0) return errno == EINTR;
    if (!PQconsumeInput(db)) return false;
    PGnotify *note;
    while ((note = PQnotifies(db)) != NULL) PQfreemem(note);
  }
  return PQstatus(db) == CONNECTION_OK;
}

static void pg_kick(pg_store *s) {
  if (s->prober) periodic_kick(s->prober);
}

pg_conn *pg_acquire(pg_store *s, store_status *st) {
  *st = STORE_UNAVAILABLE;
  /* While the probe gets no answer, fail fast: health says NOT_SERVING,
   * and a call must not wait for a connect timeout or a hung server. */
  if (!atomic_load(&s->up)) return NULL;
  /* Every connection busy for a whole call timeout means they are stuck on
   * a server that stopped answering: give up rather than queue. */
  struct timespec until;
  clock_mono_deadline(&until, PG_CALL_TIMEOUT_MS);
  pthread_mutex_lock(&s->pool_mu);
  while (!s->free_list)
    if (pthread_cond_timedwait(&s->pool_cv, &s->pool_mu, &until) == ETIMEDOUT && !s->free_list) {
      pthread_mutex_unlock(&s->pool_mu);
      return NULL;
    }
  pg_conn *c = s->free_list;
  s->free_list = c->next_free;
  pthread_mutex_unlock(&s->pool_mu);
  if (c->db && !pg_alive(c->db)) {
    PQfinish(c->db);
    c->db = NULL;
    pg_kick(s);
  }
  if (!c->db) {
    char why[256];
    c->db = pg_connect(s, true, why, sizeof why);
    if (!c->db) pg_kick(s);
  }
  if (!c->db) {
    pg_release(s, c);
    *st = STORE_UNAVAILABLE;
    return NULL;
  }
  *st = STORE_OK;
  return c;
}

void pg_release(pg_store *s, pg_conn *c) {
  /* ACTIVE: a statement that timed out is still running; only closing the
   * connection is safe then (PostgreSQL rolls its transaction back). */
  PGTransactionStatusType ts = c->db ? PQtransactionStatus(c->db) : PQTRANS_UNKNOWN;
  if (c->db && PQstatus(c->db) == CONNECTION_OK && ts != PQTRANS_IDLE && ts != PQTRANS_ACTIVE)
    PQclear(pg_exec(c->db, PG_CALL_TIMEOUT_MS, "ROLLBACK", 0, NULL));
  if (c->db &&
      (PQstatus(c->db) != CONNECTION_OK || PQtransactionStatus(c->db) != PQTRANS_IDLE)) {
    PQfinish(c->db);
    c->db = NULL;
    pg_kick(s);
  }
  pthread_mutex_lock(&s->pool_mu);
  c->next_free = s->free_list;
  s->free_list = c;
  pthread_cond_signal(&s->pool_cv);
  pthread_mutex_unlock(&s->pool_mu);
}

/* ---------------------------------------------------------------- schema --- */

typedef enum pg_migrate_result { PG_MIGRATED, PG_MIGRATE_UNAVAILABLE, PG_MIGRATE_FAILED } pg_migrate_result;

/* Runs sql; true when it ended with `want`. On failure fills why and *res. */
static bool exec_step(PGconn *db, const char *sql, ExecStatusType want, PGresult **keep,
                      char *why, size_t whylen, pg_migrate_result *res) {
  PGresult *r = pg_exec(db, PG_MIGRATE_TIMEOUT_MS, sql, 0, NULL);
  bool ok = PQresultStatus(r) == want;
  if (!ok) {
    first_line(why, whylen, r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
                                                              : PQerrorMessage(db));
    *res = pg_classify(db, r) == STORE_UNAVAILABLE ? PG_MIGRATE_UNAVAILABLE : PG_MIGRATE_FAILED;
  }
  if (ok && keep)
    *keep = r;
  else
    PQclear(r);
  return ok;
}

/* Brings the schema to STORE_POSTGRES_SCHEMA_VERSION in one transaction
 * (PostgreSQL's DDL is transactional: a failure leaves the old version).
 * The transaction-scoped advisory lock makes concurrent starts take turns;
 * the second one finds the work done. It is released by COMMIT or ROLLBACK,
 * also when the connection dies. */
static pg_migrate_result pg_migrate(PGconn *db, char *why, size_t whylen) {
  pg_migrate_result res = PG_MIGRATE_FAILED;
  PGresult *r = NULL;
  char sql[320];
  snprintf(sql, sizeof sql,
           "BEGIN; SELECT pg_advisory_xact_lock(%lld);"
           " CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
           " SELECT COALESCE(MAX(version), 0) FROM schema_version",
           (long long)STORE_POSTGRES_MIGRATION_LOCK);
  if (!exec_step(db, sql, PGRES_TUPLES_OK, &r, why, whylen, &res)) goto fail;
  long version = PQntuples(r) == 1 ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
  PQclear(r);
  if (version < 0 || version > STORE_POSTGRES_SCHEMA_VERSION) {
    snprintf(why, whylen, "the database is at schema version %ld, newer than this build (%d)",
             version, STORE_POSTGRES_SCHEMA_VERSION);
    res = PG_MIGRATE_FAILED;
    goto fail;
  }
  for (long v = version + 1; v <= STORE_POSTGRES_SCHEMA_VERSION; v++)
    if (!exec_step(db, pg_migrations[v - 1], PGRES_COMMAND_OK, NULL, why, whylen, &res))
      goto fail;
  if (version < STORE_POSTGRES_SCHEMA_VERSION) {
    snprintf(sql, sizeof sql,
             "DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (%d)",
             STORE_POSTGRES_SCHEMA_VERSION);
    if (!exec_step(db, sql, PGRES_COMMAND_OK, NULL, why, whylen, &res)) goto fail;
  }
  if (!exec_step(db, "COMMIT", PGRES_COMMAND_OK, NULL, why, whylen, &res)) goto fail;
  return PG_MIGRATED;
fail:
  /* After a timeout the connection is busy (ACTIVE): the caller drops it. */
  if (PQstatus(db) == CONNECTION_OK && PQtransactionStatus(db) != PQTRANS_IDLE &&
      PQtransactionStatus(db) != PQTRANS_ACTIVE)
    PQclear(pg_exec(db, PG_CALL_TIMEOUT_MS, "ROLLBACK", 0, NULL));
  return res;
}

/* ----------------------------------------------------------------- probe --- */

/* SELECT 1 with a deadline: a server that accepted the connection but does
 * not answer (stopped, overloaded, a half-open path) counts as down, and
 * does not keep the probe (or shutdown, which joins it) waiting. */
static bool probe_query(PGconn *db, char *why, size_t whylen) {
  PGresult *r = pg_exec(db, PG_PROBE_QUERY_TIMEOUT_MS, "SELECT 1", 0, NULL);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok)
    first_line(why, whylen, r ? PQresultErrorMessage(r)
                              : PQstatus(db) == CONNECTION_OK ? "no answer to SELECT 1 in time"
                                                              : PQerrorMessage(db));
  PQclear(r);
  return ok;
}

/* One look at PostgreSQL through the probe's connection: connect if needed,
 * migrate if not done yet, SELECT 1. *hard is set when the schema cannot be
 * brought up to date for a reason other than availability. */
static bool probe_once(pg_store *s, char *why, size_t whylen, bool *hard) {
  bool ok = false;
  *hard = false;
  atomic_store(&s->probe_started_ns, (long long)clock_mono_ns());
  if (s->probe_db && !pg_alive(s->probe_db)) {
    PQfinish(s->probe_db);
    s->probe_db = NULL;
  }
  /* A connection that was open before this look may have been closed under
   * it (a terminated backend, a restart between pg_alive and the query):
   * that says nothing of the server, so a failure on it gets one more try
   * on a new connection. Only a failure on a fresh one is an outage. */
  for (int attempt = 0; attempt < 2 && !ok; attempt++) {
    bool fresh = s->probe_db == NULL;
    if (fresh) s->probe_db = pg_connect(s, false, why, whylen);
    if (!s->probe_db) break;
    if (!atomic_load(&s->migrated)) {
      pg_migrate_result m = pg_migrate(s->probe_db, why, whylen);
      if (m == PG_MIGRATED) atomic_store(&s->migrated, true);
      *hard = m == PG_MIGRATE_FAILED;
    }
    if (atomic_load(&s->migrated)) ok = probe_query(s->probe_db, why, whylen);
    if (!ok || PQstatus(s->probe_db) != CONNECTION_OK) {
      PQfinish(s->probe_db);
      s->probe_db = NULL;
    }
    if (fresh) break;
    *hard = false; /* a migration that failed on a stale connection is tried again */
  }
  atomic_store(&s->probe_started_ns, 0);
  /* The purge of expired request ids rides on the probe's connection but
   * outside its stuck-probe window: a slow DELETE (row locks of concurrent
   * creates) is no sign of an outage. One that failed or timed out (its
   * query may still run) costs the connection; the next probe opens one. */
  int64_t now = clock_mono_ns();
  if (ok && s->probe_db &&
      (s->last_purge_ns == 0 || now - s->last_purge_ns > (int64_t)STORE_POSTGRES_PURGE_MS * 1000000)) {
    s->last_purge_ns = now;
    if (!pg_purge_requests(s->probe_db)) {
      PQfinish(s->probe_db);
      s->probe_db = NULL;
    }
  }
  return ok;
}

/* Records the probe's answer; logs each outage once, and the recovery
 * (not the first answer at open: the start-up line names the store). */
static void set_up(pg_store *s, bool up, const char *why, bool first) {
  bool was = atomic_exchange(&s->up, up);
  if (up == was && (up || s->down_logged)) return;
  if (up && first) return;
  log_line l;
  if (up) {
    log_line_begin(&l, LOG_INFO, "store: postgres answers again; serving");
  } else {
    log_line_begin(&l, LOG_WARN, "store: postgres does not answer; calls get UNAVAILABLE");
    log_line_str(&l, "error", why);
  }
  log_line_str(&l, "store", s->safe_uri);
  log_line_emit(&l);
  s->down_logged = !up;
}


/* Every STORE_POSTGRES_PROBE_MS, or sooner when a call kicks (a short gap
 * however often calls kick). */
static int64_t prober_tick(periodic *p, void *arg) {
  (void)p;
  pg_store *s = arg;
  char why[256] = "";
  bool hard = false;
  set_up(s, probe_once(s, why, sizeof why, &hard), why, false);
  return PERIODIC_INTERVAL;
}

/* ------------------------------------------------------------ the store --- */

static store_status pg_flush(store *base) {
  /* A COMMIT that returned is as durable as the server's synchronous_commit
   * makes it; nothing is buffered on our side. */
  (void)base;
  return STORE_OK;
}

static bool pg_healthy(store *base) {
  pg_store *s = (pg_store *)base;
  long long started = atomic_load(&s->probe_started_ns);
  if (started != 0 && clock_mono_ns() - started > PG_PROBE_STUCK_NS) return false;
  return atomic_load(&s->up);
}

static void pg_destroy(store *base) {
  pg_store *s = (pg_store *)base;
  periodic_stop(s->prober);
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i].db) PQfinish(s->conns[i].db);
  if (s->probe_db) PQfinish(s->probe_db);
  free(s->conns);
  pthread_cond_destroy(&s->pool_cv);
  pthread_mutex_destroy(&s->pool_mu);
  if (s->uri) {
    memset(s->uri, 0, strlen(s->uri)); /* it may hold a password */
    free(s->uri);
  }
  free(s->safe_uri);
  free(s);
}

static const store_ops pg_ops = {
    .name = "postgres",
    .create = pg_create,
    .get = pg_get,
    .update = pg_update,
    .remove = pg_remove,
    .list = pg_list,
    .create_once = pg_create_once,
    .flush = pg_flush,
    .healthy = pg_healthy,
    .destroy = pg_destroy,
};

/* Keywords around the URI. Defaults go before dbname (the expanded URI
 * overrides them) and only when the environment has not set them (libpq
 * reads PGCONNECT_TIMEOUT and PGAPPNAME itself: PQconndefaults shows them);
 * what must hold goes after. */
static void set_params(pg_store *s) {
  bool env_timeout = false, env_app = false;
  PQconninfoOption *defs = PQconndefaults();
  for (PQconninfoOption *o = defs; o && o->keyword; o++) {
    if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val) env_timeout = true;
    if (strcmp(o->keyword, "application_name") == 0 && o->val && *o->val) env_app = true;
  }
  if (defs) PQconninfoFree(defs);
  size_t n = 0;
  if (!env_timeout) {
    s->kw[n] = "connect_timeout";
    s->val[n++] = PG_CONNECT_TIMEOUT_S;
  }
  if (!env_app) {
    s->kw[n] = "application_name";
    s->val[n++] = "product-service";
  }
  /* A peer that vanishes without closing (a partition, a dead host) is
   * noticed within ~25 s instead of the kernel's two hours, so a call
   * waiting on it ends UNAVAILABLE. No PG* variable sets these. */
  static const char *const tcp[][2] = {
      {"keepalives_idle", "10"}, {"keepalives_interval", "5"}, {"keepalives_count", "3"},
      {"tcp_user_timeout", "10000"}};
  for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++) {
    s->kw[n] = tcp[i][0];
    s->val[n++] = tcp[i][1];
  }
  s->kw[n] = "dbname";
  s->val[n++] = s->uri;
  s->kw[n] = "client_encoding";
  s->val[n++] = "UTF8";
  s->kw[n] = NULL;
  s->val[n] = NULL;
}

int store_postgres_open(const char *uri, const store_options *opt, store **out, char *err,
                        size_t errlen) {
  *out = NULL;
  pg_store *s = calloc(1, sizeof(*s));
  if (!s) goto oom;
  s->base.ops = &pg_ops;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&s->pool_mu, NULL);
  pthread_cond_init(&s->pool_cv, &ca);
  pthread_condattr_destroy(&ca);
  size_t safe_len = strlen(uri) + 64;
  s->uri = strdup(uri);
  s->safe_uri = malloc(safe_len);
  size_t n = opt && opt->pool_size > 0 ? (size_t)opt->pool_size : PG_DEFAULT_POOL;
  if (n > PG_MAX_POOL) n = PG_MAX_POOL;
  s->conns = calloc(n, sizeof(*s->conns));
  if (!s->uri || !s->safe_uri || !s->conns) goto oom;
  store_spec_redact(uri, s->safe_uri, safe_len);
  s->n_conns = n;
  for (size_t i = 0; i < n; i++) {
    s->conns[i].next_free = s->free_list;
    s->free_list = &s->conns[i];
  }
  set_params(s);

  /* The first look is synchronous: a reachable database is migrated before
   * the server serves, and a schema we cannot use is a start-up error. An
   * unreachable one is not: the probe keeps trying. */
  char why[256] = "";
  bool hard = false;
  bool up = probe_once(s, why, sizeof why, &hard);
  if (hard) {
    if (err && errlen) snprintf(err, errlen, "store: postgres: %s", why);
    pg_destroy(&s->base);
    return -1;
  }
  set_up(s, up, why, true);
  periodic_options po = {.name = "pg-probe",
                         .tick = prober_tick,
                         .arg = s,
                         .interval_ms = STORE_POSTGRES_PROBE_MS,
                         .min_gap_ms = PG_PROBE_MIN_GAP_MS};
  if (periodic_start(&po, &s->prober) != 0) {
    if (err && errlen) snprintf(err, errlen, "store: postgres: cannot start the probe thread");
    pg_destroy(&s->base);
    return -1;
  }
  *out = &s->base;
  return 0;
oom:
  if (s) pg_destroy(&s->base);
  if (err && errlen) snprintf(err, errlen, "store: postgres: out of memory");
  return -1;
}
