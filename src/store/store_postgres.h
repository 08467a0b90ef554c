#ifndef PRODUCT_STORE_STORE_POSTGRES_H
#define PRODUCT_STORE_STORE_POSTGRES_H
/* What the PostgreSQL backend shows beyond store.h, for tests and
 * benchmarks. Open the backend with store_open("postgres://...", ...); the
 * build has it when libpq is found (PRODUCT_HAVE_POSTGRES). */
#include <stdint.h>

#include "store/store.h"

/* The schema version this build creates and migrates to (table
 * schema_version holds the version a database is at). */
#define STORE_POSTGRES_SCHEMA_VERSION 3

/* The advisory lock key that serialises schema migrations between replicas
 * that start together (pg_advisory_xact_lock; ASCII "prodsvc1"). */
#define STORE_POSTGRES_MIGRATION_LOCK INT64_C(0x70726f6473766331)

/* How often the backend's probe asks PostgreSQL whether it answers. */
#define STORE_POSTGRES_PROBE_MS 1000

/* How often the probe also drops expired request ids (a bounded DELETE on
 * its own connection, beside the calls; every replica does it, harmlessly). */
#define STORE_POSTGRES_PURGE_MS 60000

#endif
