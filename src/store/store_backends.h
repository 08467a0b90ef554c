#ifndef PRODUCT_STORE_STORE_BACKENDS_H
#define PRODUCT_STORE_STORE_BACKENDS_H
/* The constructors store_open() dispatches to. Private to src/store/: the
 * rest of the program names a backend only through a STORE spec. Each one
 * writes one line into err on failure, never a password. */
#include <stddef.h>

#include "store/store.h"

int store_memory_open(const store_options *opt, store **out, char *err, size_t errlen);

/* path: the database file; its directory must exist (store_open creates it). */
int store_sqlite_open(const char *path, const store_options *opt, store **out, char *err,
                      size_t errlen);

/* uri: handed to libpq as given. Defined by src/store/store_postgres.c, which
 * the build compiles only when libpq is found (PRODUCT_HAVE_POSTGRES). */
int store_postgres_open(const char *uri, const store_options *opt, store **out, char *err,
                        size_t errlen);

/* Where an out-of-memory copy of a string falls back to (product fields are
 * never NULL inside the store). */
static inline const char *store_str_or_empty(const char *s) { return s ? s : ""; }

#endif
