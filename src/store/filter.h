#ifndef PRODUCT_STORE_FILTER_H
#define PRODUCT_STORE_FILTER_H
/* ListProducts filters (product-server(8) "Filter grammar", docs/filter.md): parsed
 * once per call into a tree in the call's arena; evaluated in memory by
 * filter_match() and compiled to parameterised SQL by filter_to_sql(). User
 * text never becomes SQL text: every value is a bound parameter.
 *
 * SQL schema contract (what every SQL backend must provide so that the
 * fragment from filter_to_sql() selects exactly what filter_match() selects):
 *
 *   The fragment is used in the WHERE clause of a query whose product table
 *   is visible under the name `products` (it refers to products.id):
 *     SELECT ... FROM products WHERE <fragment> [AND keyset...] ORDER BY ...
 *   products columns it reads, all NOT NULL (NULL would turn NOT into
 *   "unknown" and diverge from filter_match):
 *     id          TEXT                 product id
 *     name        TEXT                 default collation (SQLite BINARY;
 *     description TEXT                 PostgreSQL deterministic); '' when empty
 *     price       REAL / DOUBLE PRECISION (a double, not a decimal type)
 *     created_us  INTEGER / BIGINT     microseconds since the Unix epoch
 *     updated_us  INTEGER / BIGINT     microseconds since the Unix epoch
 *   categories live in
 *     product_categories(product_id TEXT, position INTEGER, value TEXT)
 *   (one row per element; value compared byte-wise) and are tested with
 *     EXISTS (SELECT 1 FROM product_categories c
 *             WHERE c.product_id = products.id AND c.value = ?N)
 *   so an index on product_categories(value, product_id) helps.
 *
 * Operators compile to: price/created_at/updated_at `= <> < <= > >=` on the
 * column; name/description `=` and `!=` to `=` / `<>`; `:` to an ASCII
 * case-insensitive substring test: SQLite `instr(lower(col), ?N) > 0`
 * (SQLite's built-in lower() folds ASCII only; do not load ICU) and
 * PostgreSQL `strpos(translate(col, 'A..Z', 'a..z'), $N::text) > 0` (lower()
 * there is locale-aware). For `:` the bound text is already ASCII-lower-cased.
 * PostgreSQL placeholders carry casts ($N::double precision, $N::bigint,
 * $N::text) so the backend may pass paramTypes = NULL.
 *
 * Strings in a filter may not contain a NUL byte (stored product strings are
 * C strings, and PostgreSQL text cannot hold NUL): that is a parse error. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "store/store.h"

#define FILTER_MAX_BYTES 1024
#define FILTER_MAX_DEPTH 16

typedef struct filter filter;

/* filter_parse results besides 0 (success). */
#define FILTER_EINVAL (-1) /* the filter is bad: INVALID_ARGUMENT, err says why and where */
#define FILTER_ENOMEM (-2) /* the arena ran out: an internal error, not the caller's */

/* Parses text[0..len) (text need not be NUL-terminated; NUL bytes count as
 * bytes). *out is NULL for an empty (or all-whitespace) filter. The tree and
 * everything it points to live in `a`. On a syntax or type error returns
 * FILTER_EINVAL and writes one line naming the 0-based byte offset
 * ("filter: unknown field 'foo' at offset 0") into err (if errlen > 0); the
 * line never quotes user strings or non-printable bytes. Out of memory gives
 * FILTER_ENOMEM ("filter: out of memory"). Recursion depth is bounded by
 * FILTER_MAX_DEPTH (chains of NOT are folded iteratively). */
int filter_parse(const char *text, size_t len, arena *a, filter **out, char *err, size_t errlen);

/* Whether product p matches f (f NULL matches all). NULL string fields of p
 * count as empty. Runs in time linear in the product's size per comparison. */
bool filter_match(const filter *f, const product *p);

/* SQL dialects differ in placeholders and case-insensitive matching. */
typedef enum filter_dialect { FILTER_SQL_SQLITE, FILTER_SQL_POSTGRES } filter_dialect;

typedef enum filter_param_kind { FILTER_PARAM_TEXT, FILTER_PARAM_DOUBLE, FILTER_PARAM_INT64 } filter_param_kind;
typedef struct filter_param {
  filter_param_kind kind;
  const char *text; /* TEXT: NUL-terminated, in the arena (never contains NUL) */
  size_t text_len;
  double d;  /* DOUBLE */
  int64_t i; /* INT64 */
} filter_param;

/* A WHERE-clause fragment (see the schema contract above), fully
 * parenthesised, with placeholders numbered from first_param (>= 1; "$N" for
 * PostgreSQL, "?N" for SQLite). params[k] binds placeholder first_param + k.
 * f NULL gives "(1 = 1)" and no params. sql and params are arena-allocated.
 * Returns non-zero on OOM or first_param < 1. */
typedef struct filter_sql {
  char *sql;
  filter_param *params;
  size_t n_params;
} filter_sql;
int filter_to_sql(const filter *f, filter_dialect d, int first_param, arena *a, filter_sql *out);

#endif
