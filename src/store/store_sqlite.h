#ifndef PRODUCT_STORE_STORE_SQLITE_H
#define PRODUCT_STORE_STORE_SQLITE_H
/* What the SQLite backend shows beyond store.h, for tests and benchmarks:
 * its schema version and the group-commit counters. Open the backend with
 * store_open("sqlite:PATH", ...). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The schema version this build creates and migrates to (table
 * schema_version holds the version a database file is at). */
#define STORE_SQLITE_SCHEMA_VERSION 3

/* How often the writer, when idle, drops expired request ids (in chunks, each
 * its own short transaction, and queued writes go first). */
#define STORE_SQLITE_PURGE_MS 60000

typedef struct store_sqlite_stats {
  uint64_t transactions;  /* committed write transactions */
  uint64_t writes;        /* create/update/remove requests they carried */
  uint64_t largest_batch; /* most requests in one transaction */
  size_t queued;          /* requests waiting for the writer now */
  int synchronous;        /* the writer's PRAGMA synchronous (2 = FULL) */
  uint64_t purged;        /* expired request ids deleted so far */
  uint64_t purges;        /* purge passes that ran */
} store_sqlite_stats;

/* Non-zero when s is not a SQLite store. */
int store_sqlite_get_stats(store *s, store_sqlite_stats *out);

/* Tests: while paused, the writer leaves requests queued (callers block), so
 * a test can line up a batch deterministically. Non-zero when s is not a
 * SQLite store. */
int store_sqlite_set_paused(store *s, bool paused);

/* Tests: makes the writer's next idle moment a purge pass of expired
 * request ids, as if STORE_SQLITE_PURGE_MS had passed. */
int store_sqlite_purge_soon(store *s);

#endif
