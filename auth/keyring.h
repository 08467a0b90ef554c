#ifndef PRODUCT_AUTH_KEYRING_H
#define PRODUCT_AUTH_KEYRING_H
/* The token-checking state in force, reloaded from disk without a restart:
 * a verifier (one per key set, or the start-up single-secret verifier), with
 * a key set its ListProducts page-token keys, and the revocation list. What
 * is in force is an immutable, refcounted snapshot behind an atomic pointer;
 * a call takes one (keyring_acquire), uses it and gives it back, with no
 * lock. A reload builds a whole new snapshot and swaps
 * the pointer, so a reader never sees half a set; the old snapshot is freed
 * when its last reader gives it back.
 *
 * A watching thread looks at the files with core/file_watch.h (the TLS
 * rotation's mechanism) every second; a changed file that parses replaces
 * its part, one that does not keeps the last good part in force, and one log
 * line says why. Every snapshot has a new generation number, which the
 * verified-token cache stores with each entry: after a reload no entry from
 * before can be served (a removed key, a new revocation). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt_verify.h"
#include "core/log.h"
#include "auth/page_token.h"

typedef struct keyring keyring;
typedef struct keyring_snap keyring_snap;

/* Called (from the watching thread, or keyring_create) with the number of
 * keys in force after every load. */
typedef void (*keyring_keys_fn)(void *arg, size_t n_keys);

typedef struct keyring_options {
  const char *keys_path;        /* NULL: single-secret mode, base->secret */
  const char *revocations_path; /* NULL: no revocation list */
  const jwt_verifier_options *base; /* issuer, audience, leeway (and the secret) */
  int64_t interval_ms;          /* between looks at the files; 0: 1000 */
  keyring_keys_fn on_keys;
  void *on_keys_arg;
} keyring_options;

/* Loads both files. Non-zero with one start-up line in err (naming the key
 * or the line, never a secret). */
int keyring_create(const keyring_options *opt, keyring **out, char *err, size_t errlen);
/* Stops the watching thread; every snapshot must have been released. */
void keyring_destroy(keyring *kr);
/* Starts the watching thread. Non-zero when it cannot. */
int keyring_start(keyring *kr);

/* The snapshot in force, never NULL; lock-free. Release it after the call. */
keyring_snap *keyring_acquire(keyring *kr);
void keyring_release(keyring_snap *s);

/* jwt_verify with the snapshot's keys, then the revocation list. */
jwt_result keyring_verify(const keyring_snap *s, const char *token, size_t len, int64_t now,
                          jwt_identity *out);
/* Never 0 (the single-secret path's cache tag), unique per snapshot. */
uint64_t keyring_snap_generation(const keyring_snap *s);
size_t keyring_snap_keys(const keyring_snap *s);
/* The page-token keys of the key set in force, prepared when it was loaded;
 * NULL in single-secret mode (the secret's page key applies). */
const page_keyset *keyring_snap_page_keys(const keyring_snap *s);

/* Adds jwt_keys (the kids in force, "(verify)" after a verify-only one;
 * never k) and jwt_revocations (entries, with a list) to a line. */
void keyring_describe(keyring *kr, log_line *l);

/* ---- for tests ---- */
/* Looks at the files now (whatever the interval) as the thread would:
 * 1 a new snapshot is in force, 0 nothing changed, -1 a changed file was
 * refused (the last good content stays). */
int keyring_poll(keyring *kr);

#endif
