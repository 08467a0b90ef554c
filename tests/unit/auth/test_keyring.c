/* Tests for auth/keyring.c (with auth/jwt_verify.c in key-set mode and
 * core/file_watch.c): the kid picks the key, an unknown kid is refused
 * before any signature work, reloads swap whole snapshots (also through a
 * Kubernetes-style "..data" symlink swap), a broken file keeps the last good
 * content, revocations apply, and a snapshot taken before a reload stays
 * usable until released while readers run on other threads; page-token keys
 * follow the key set in force. Reloads are
 * driven with keyring_poll, never by waiting for the thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/keyring.h"
#include "auth/token_cache.h"
#include "support/jwt_forge.h"

/* Three 32-byte ASCII keys and their unpadded base64url. */
#define KEY1 "key-one-0123456789abcdef01234567"
#define KEY2 "key-two-0123456789abcdef01234567"
#define KEY3 "key-three-0123456789abcdef012345"
#define B64_1 "a2V5LW9uZS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc"
#define B64_2 "a2V5LXR3by0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc"
#define B64_3 "a2V5LXRocmVlLTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU"
#define NOW 1800000000
#define CAP 2048

static char dir[64];
static char keys_path[128], revs_path[128];
static char g_err[512];

static void write_file(const char *path, const char *text) {
  /* Atomically, as an operator's tooling (or kubelet) would. */
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rename(tmp, path), 0);
}

static const char *set3 = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"k\":\"" B64_1
                          "\",\"key_ops\":[\"verify\"]},"
                          "{\"kty\":\"oct\",\"kid\":\"k2\",\"k\":\"" B64_2 "\"},"
                          "{\"kty\":\"oct\",\"kid\":\"k3\",\"k\":\"" B64_3 "\"}]}";
static const char *set23 = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k2\",\"k\":\"" B64_2 "\"},"
                           "{\"kty\":\"oct\",\"kid\":\"k3\",\"k\":\"" B64_3 "\"}]}";

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/test_keyring_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(keys_path, sizeof keys_path, "%s/jwks.json", dir);
  snprintf(revs_path, sizeof revs_path, "%s/revoked.txt", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const jwt_verifier_options base = {
    .secret = (const unsigned char *)KEY1, .secret_len = 32, .issuer = "product-service",
    .audience = "client", .leeway_s = 30};

static keyring *open_ring(const char *keys, const char *revs) {
  keyring_options o = {.keys_path = keys, .revocations_path = revs, .base = &base};
  keyring *kr = NULL;
  if (keyring_create(&o, &kr, g_err, sizeof g_err) != 0) fail_msg("refused: %s", g_err);
  return kr;
}

static size_t token(char *out, const char *header, const char *secret, const char *extra) {
  char payload[512];
  snprintf(payload, sizeof payload,
           "{\"sub\":\"alice\",\"iss\":\"product-service\",\"aud\":\"client\",\"exp\":%d,"
           "\"iat\":%d%s}",
           NOW + 600, NOW - 10, extra ? extra : "");
  size_t n = forge_token(out, CAP, header, payload, secret, "SHA256");
  assert_true(n > 0);
  return n;
}

#define H(kid) "{\"alg\":\"HS256\",\"kid\":\"" kid "\",\"typ\":\"JWT\"}"

static jwt_result check(keyring *kr, const char *tok) {
  keyring_snap *s = keyring_acquire(kr);
  jwt_identity id;
  jwt_result r = keyring_verify(s, tok, strlen(tok), NOW, &id);
  keyring_release(s);
  return r;
}

static void test_the_kid_selects_the_key(void **state) {
  (void)state;
  write_file(keys_path, set3);
  keyring *kr = open_ring(keys_path, NULL);
  char t[CAP];
  token(t, H("k2"), KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_OK);
  token(t, H("k1"), KEY1, NULL); /* a verify-only key still verifies */
  assert_int_equal(check(kr, t), JWT_OK);
  token(t, H("k3"), KEY2, NULL); /* the wrong key for that kid */
  assert_int_equal(check(kr, t), JWT_BAD_SIGNATURE);
  /* Layouts that the prepared headers do not cover go through the parser. */
  token(t, "{\"kid\":\"k3\",\"alg\":\"HS256\"}", KEY3, NULL);
  assert_int_equal(check(kr, t), JWT_OK);
  token(t, "{\"typ\":\"JWT\",\"kid\":\"k2\",\"alg\":\"HS256\",\"x\":1}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_OK);
  /* An escaped kid is the same kid (the parser decides, not the bytes). */
  token(t, "{\"alg\":\"HS256\",\"kid\":\"k\\u0032\",\"typ\":\"JWT\"}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_OK);
  token(t, "{\"alg\":\"HS256\",\"kid\":\"k2\",\"kid\":\"k3\"}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_MALFORMED); /* duplicate member */
  token(t, "{\"alg\":\"HS256\",\"kid\":\"k2\",\"crit\":[\"x\"]}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_UNSUPPORTED_CRIT);
  token(t, "{\"alg\":\"HS512\",\"kid\":\"k2\"}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_BAD_ALG);
  keyring_snap *s = keyring_acquire(kr);
  assert_int_equal(keyring_snap_keys(s), 3);
  assert_int_not_equal(keyring_snap_generation(s), 0);
  keyring_release(s);
  keyring_destroy(kr);
}

static void test_no_kid_or_an_unknown_kid_is_refused(void **state) {
  (void)state;
  write_file(keys_path, set3);
  keyring *kr = open_ring(keys_path, NULL);
  char t[CAP];
  token(t, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  token(t, H("k4"), KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  token(t, H("k"), KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  token(t, "{\"alg\":\"HS256\",\"kid\":2}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  token(t, "{\"alg\":\"HS256\",\"kid\":\"\"}", KEY2, NULL);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  /* Refused before the signature is looked at: a garbage signature too. */
  token(t, H("nope"), KEY2, NULL);
  strcpy(strrchr(t, '.') + 1, "x");
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  keyring_destroy(kr);
}

static void test_start_up_refusals_name_the_key_or_line(void **state) {
  (void)state;
  write_file(keys_path, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"short\",\"k\":\"YWJj\"}]}");
  keyring_options o = {.keys_path = keys_path, .base = &base};
  keyring *kr = (keyring *)1;
  assert_int_not_equal(keyring_create(&o, &kr, g_err, sizeof g_err), 0);
  assert_null(kr);
  assert_non_null(strstr(g_err, "key 0 (kid \"short\")"));
  assert_null(strstr(g_err, "YWJj"));
  write_file(keys_path, set3);
  write_file(revs_path, "jti a\nsub b\n");
  o.revocations_path = revs_path;
  assert_int_not_equal(keyring_create(&o, &kr, g_err, sizeof g_err), 0);
  assert_non_null(strstr(g_err, "line 2"));
}

static void test_a_reload_swaps_the_key_set_and_the_cache_misses(void **state) {
  (void)state;
  write_file(keys_path, set3);
  keyring *kr = open_ring(keys_path, NULL);
  char t[CAP];
  token(t, H("k1"), KEY1, NULL);
  size_t len = strlen(t);
  assert_int_equal(keyring_poll(kr), 0); /* nothing changed */

  keyring_snap *before = keyring_acquire(kr);
  jwt_identity id;
  assert_int_equal(keyring_verify(before, t, len, NOW, &id), JWT_OK);
  token_cache *tc = token_cache_create();
  uint64_t gen0 = keyring_snap_generation(before);
  token_cache_put(tc, t, len, gen0, &id);

  write_file(keys_path, set23); /* k1 retired */
  assert_int_equal(keyring_poll(kr), 1);
  keyring_snap *after = keyring_acquire(kr);
  assert_int_not_equal(keyring_snap_generation(after), gen0);
  assert_int_equal(keyring_snap_keys(after), 2);
  /* The cached entry belongs to the old generation: a miss, then refused. */
  assert_false(token_cache_get(tc, t, len, keyring_snap_generation(after), NOW, 30, &id));
  assert_int_equal(keyring_verify(after, t, len, NOW, &id), JWT_UNKNOWN_KID);
  /* A call that took the old snapshot finishes with it. */
  assert_int_equal(keyring_verify(before, t, len, NOW, &id), JWT_OK);
  keyring_release(before);
  keyring_release(after);
  token_cache_destroy(tc);
  keyring_destroy(kr);
}

/* The page keys are part of each snapshot: a page token minted under one
 * verifies under a later one while its key is in the set, and not after. */
static void test_page_keys_follow_the_key_set(void **state) {
  (void)state;
  static const char *set12 = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"k\":\"" B64_1 "\"},"
                             "{\"kty\":\"oct\",\"kid\":\"k2\",\"k\":\"" B64_2 "\"}]}";
  static const char *set3only = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k3\",\"k\":\"" B64_3 "\"}]}";
  /* k2 is verify-only: k1 is the last key that may sign, so it mints. */
  static const char *set1v2 = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"k\":\"" B64_1 "\"},"
                              "{\"kty\":\"oct\",\"kid\":\"k2\",\"k\":\"" B64_2
                              "\",\"key_ops\":[\"verify\"]}]}";
  static const char *set1only = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"k\":\"" B64_1 "\"}]}";
  page_cursor cur = {.created_us = 42}, got;
  snprintf(cur.id, sizeof cur.id, "p-1");
  char tok[PAGE_TOKEN_MAX], tok1[PAGE_TOKEN_MAX];
  write_file(keys_path, set12);
  keyring *kr = open_ring(keys_path, NULL);
  keyring_snap *a = keyring_acquire(kr);
  assert_non_null(keyring_snap_page_keys(a));
  assert_int_equal(page_keyset_encode(keyring_snap_page_keys(a), &cur, "", 0, tok, sizeof tok), 0);

  write_file(keys_path, set23); /* k1 gone, k2 (which minted tok) still there */
  assert_int_equal(keyring_poll(kr), 1);
  keyring_snap *b = keyring_acquire(kr);
  assert_int_equal(page_keyset_decode(keyring_snap_page_keys(b), tok, strlen(tok), "", 0, &got),
                   0);
  assert_int_equal(got.created_us, 42);
  assert_string_equal(got.id, "p-1");

  write_file(keys_path, set3only);
  assert_int_equal(keyring_poll(kr), 1);
  keyring_snap *c = keyring_acquire(kr);
  assert_int_not_equal(
      page_keyset_decode(keyring_snap_page_keys(c), tok, strlen(tok), "", 0, &got), 0);
  /* A call still holding an older snapshot finishes with its keys. */
  assert_int_equal(page_keyset_decode(keyring_snap_page_keys(a), tok, strlen(tok), "", 0, &got),
                   0);
  keyring_release(a);
  keyring_release(b);
  keyring_release(c);

  write_file(keys_path, set1v2);
  assert_int_equal(keyring_poll(kr), 1);
  a = keyring_acquire(kr);
  assert_int_equal(page_keyset_encode(keyring_snap_page_keys(a), &cur, "", 0, tok1, sizeof tok1),
                   0);
  write_file(keys_path, set1only);
  assert_int_equal(keyring_poll(kr), 1);
  b = keyring_acquire(kr);
  assert_int_equal(
      page_keyset_decode(keyring_snap_page_keys(b), tok1, strlen(tok1), "", 0, &got), 0);
  keyring_release(a);
  keyring_release(b);
  keyring_destroy(kr);

  /* Single-secret mode (a revocation list only): no page keys of its own. */
  write_file(revs_path, "jti x\n");
  kr = open_ring(NULL, revs_path);
  a = keyring_acquire(kr);
  assert_null(keyring_snap_page_keys(a));
  keyring_release(a);
  keyring_destroy(kr);
}

static void test_a_broken_file_keeps_the_last_good_set(void **state) {
  (void)state;
  write_file(keys_path, set3);
  keyring *kr = open_ring(keys_path, NULL);
  char t[CAP];
  token(t, H("k1"), KEY1, NULL);
  write_file(keys_path, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k2\"");   /* half written */
  assert_int_equal(keyring_poll(kr), -1);
  assert_int_equal(check(kr, t), JWT_OK);
  assert_int_equal(keyring_poll(kr), 0); /* reported once, not at every look */
  unlink(keys_path);
  assert_int_equal(keyring_poll(kr), -1);
  assert_int_equal(check(kr, t), JWT_OK);
  write_file(keys_path, set23);
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  keyring_destroy(kr);
}

/* What a path may turn into between two looks: a FIFO nobody writes (a
 * blocking read would stall the watcher for good), a directory, a device
 * that never ends, a file over the cap. Each is refused at once and the
 * last good set stays in force; a good file afterwards is loaded. */
static void test_a_fifo_dir_device_or_huge_file_is_refused(void **state) {
  (void)state;
  write_file(keys_path, set3);
  write_file(revs_path, "jti gone\n");
  keyring *kr = open_ring(keys_path, revs_path);
  char t[CAP], tmp[200];
  token(t, H("k1"), KEY1, NULL);
  snprintf(tmp, sizeof tmp, "%s.new", keys_path);

  assert_int_equal(mkfifo(tmp, 0600), 0);
  assert_int_equal(rename(tmp, keys_path), 0);
  assert_int_equal(keyring_poll(kr), -1);
  assert_int_equal(check(kr, t), JWT_OK);

  assert_int_equal(unlink(keys_path), 0);
  assert_int_equal(mkdir(keys_path, 0700), 0);
  assert_int_equal(keyring_poll(kr), -1);
  assert_int_equal(rmdir(keys_path), 0);

  assert_int_equal(symlink("/dev/zero", keys_path), 0);
  assert_int_equal(keyring_poll(kr), -1);
  assert_int_equal(unlink(keys_path), 0);

  /* One byte over the key-set cap (1 MiB), and a revocation FIFO too. */
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  for (unsigned i = 0; i <= (1u << 20); i++) assert_int_not_equal(fputc(' ', f), EOF);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rename(tmp, keys_path), 0);
  assert_int_equal(mkfifo(tmp, 0600), 0);
  assert_int_equal(rename(tmp, revs_path), 0);
  assert_int_equal(keyring_poll(kr), -1);
  assert_int_equal(check(kr, t), JWT_OK);
  token(t, H("k2"), KEY2, ",\"jti\":\"gone\"");
  assert_int_equal(check(kr, t), JWT_REVOKED); /* the list in force stays too */

  write_file(keys_path, set23);
  write_file(revs_path, "");
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, t), JWT_OK);
  token(t, H("k1"), KEY1, NULL);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  keyring_destroy(kr);
}

static void test_a_symlink_swap_is_seen(void **state) {
  (void)state;
  /* As a Kubernetes Secret volume: jwks.json -> ..data/jwks.json, ..data ->
   * a timestamped directory, replaced by renaming a new symlink over it. */
  char d1[160], d2[160], data[160], tmp[160], f[200];
  snprintf(d1, sizeof d1, "%s/..2026_1", dir);
  snprintf(d2, sizeof d2, "%s/..2026_2", dir);
  snprintf(data, sizeof data, "%s/..data", dir);
  snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
  assert_int_equal(mkdir(d1, 0700), 0);
  assert_int_equal(mkdir(d2, 0700), 0);
  snprintf(f, sizeof f, "%s/jwks.json", d1);
  write_file(f, set3);
  snprintf(f, sizeof f, "%s/jwks.json", d2);
  write_file(f, set23);
  assert_int_equal(symlink("..2026_1", data), 0);
  char link[200];
  snprintf(link, sizeof link, "%s/k8s.json", dir);
  assert_int_equal(symlink("..data/jwks.json", link), 0);

  keyring *kr = open_ring(link, NULL);
  char t[CAP];
  token(t, H("k1"), KEY1, NULL);
  assert_int_equal(check(kr, t), JWT_OK);
  assert_int_equal(symlink("..2026_2", tmp), 0);
  assert_int_equal(rename(tmp, data), 0);
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, t), JWT_UNKNOWN_KID);
  keyring_destroy(kr);
}

static void test_revocations_apply_and_reload(void **state) {
  (void)state;
  write_file(keys_path, set3);
  write_file(revs_path, "# none yet\n");
  keyring *kr = open_ring(keys_path, revs_path);
  char a[CAP], b[CAP];
  token(a, H("k2"), KEY2, ",\"jti\":\"tok-a\"");
  token(b, H("k2"), KEY2, ",\"jti\":\"tok-b\"");
  assert_int_equal(check(kr, a), JWT_OK);
  write_file(revs_path, "jti tok-a\n");
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, a), JWT_REVOKED);
  assert_int_equal(check(kr, b), JWT_OK);
  /* iat is NOW - 10: tokens issued before NOW are revoked. */
  write_file(revs_path, "sub alice " "1800000000" "\n");
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, a), JWT_REVOKED);
  assert_int_equal(check(kr, b), JWT_REVOKED);
  write_file(revs_path, "sub alice 1799999990\n"); /* iat == BEFORE: not earlier */
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, b), JWT_OK);
  /* A broken list keeps the one in force; the key set still reloads. */
  write_file(revs_path, "sub alice 1900000000\njti\n");
  write_file(keys_path, set23);
  assert_int_equal(keyring_poll(kr), 1);
  assert_int_equal(check(kr, b), JWT_OK);
  keyring_destroy(kr);
}

static void test_single_secret_mode_with_revocations(void **state) {
  (void)state;
  write_file(revs_path, "jti gone\n");
  keyring *kr = open_ring(NULL, revs_path);
  char t[CAP];
  token(t, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", KEY1, ",\"jti\":\"gone\"");
  assert_int_equal(check(kr, t), JWT_REVOKED);
  token(t, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", KEY1, ",\"jti\":\"kept\"");
  assert_int_equal(check(kr, t), JWT_OK);
  keyring_destroy(kr);
}

/* Readers on other threads while the file flips between two sets: every
 * verification sees one whole set (k2 is in both, so it always verifies; k1
 * only in set3, so it verifies exactly when the snapshot has three keys), and
 * ASan sees no use after free. That the readers really ran during the swaps
 * is counted, not hoped: after each swap the main thread waits until the free
 * reader has finished an iteration on the new snapshot (so it sees k1 both
 * accepted and refused, once per swap at least), and the holding reader keeps
 * the snapshot it took across the next swap before it verifies with it (the
 * old snapshot must stay whole and alive while the keyring has moved on). */
#define SWAPS 40
#define WAIT_BOUND_NS (60LL * 1000000000LL) /* a hang guard, not a speed goal */

typedef struct reader_arg {
  keyring *kr;
  const char *ok_tok, *flip_tok;
  atomic_bool *stop;
  atomic_uint_fast64_t *installed; /* the generation the main thread swapped in last */
  bool holder;
  atomic_uint_fast64_t done_gen;   /* free reader: generation of its last finished pass */
  atomic_uint_fast64_t held_gen;   /* holder: generation of the snapshot it holds */
  int failures, accepted, refused, held_across;
} reader_arg;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One verification of both tokens against s: k2 always, k1 exactly when the
 * snapshot is the three-key set. */
static void verify_whole(reader_arg *a, keyring_snap *s) {
  if (keyring_verify(s, a->ok_tok, strlen(a->ok_tok), NOW, NULL) != JWT_OK) a->failures++;
  jwt_result r = keyring_verify(s, a->flip_tok, strlen(a->flip_tok), NOW, NULL);
  jwt_result want = keyring_snap_keys(s) == 3 ? JWT_OK : JWT_UNKNOWN_KID;
  if (r != want) a->failures++;
  if (r == JWT_OK) a->accepted++;
  if (r == JWT_UNKNOWN_KID) a->refused++;
}

static void *reader(void *p) {
  reader_arg *a = p;
  while (!atomic_load(a->stop)) {
    keyring_snap *s = keyring_acquire(a->kr);
    uint64_t gen = keyring_snap_generation(s);
    if (a->holder) {
      /* Hold it until the main thread has swapped in a newer one. */
      atomic_store(&a->held_gen, gen);
      while (atomic_load(a->installed) <= gen && !atomic_load(a->stop)) sched_yield();
      if (atomic_load(a->installed) > gen) a->held_across++;
    }
    verify_whole(a, s);
    keyring_release(s);
    atomic_store(&a->done_gen, gen);
  }
  return NULL;
}

static uint64_t current_gen(keyring *kr) {
  keyring_snap *s = keyring_acquire(kr);
  uint64_t g = keyring_snap_generation(s);
  keyring_release(s);
  return g;
}

/* Waits (bounded) until *v >= want. */
static void wait_at_least(atomic_uint_fast64_t *v, uint64_t want, const char *what, int swap) {
  int64_t deadline = mono_ns() + WAIT_BOUND_NS;
  while (atomic_load(v) < want) {
    if (mono_ns() > deadline) fail_msg("swap %d: %s never reached generation %llu", swap, what,
                                       (unsigned long long)want);
    sched_yield();
  }
}

static void test_readers_never_see_half_a_set(void **state) {
  (void)state;
  write_file(keys_path, set3);
  keyring *kr = open_ring(keys_path, NULL);
  char ok[CAP], flip[CAP];
  token(ok, H("k2"), KEY2, NULL);
  token(flip, H("k1"), KEY1, NULL);
  atomic_bool stop;
  atomic_init(&stop, false);
  atomic_uint_fast64_t installed;
  atomic_init(&installed, current_gen(kr));
  reader_arg args[2] = {{.kr = kr, .ok_tok = ok, .flip_tok = flip, .stop = &stop,
                         .installed = &installed, .holder = false},
                        {.kr = kr, .ok_tok = ok, .flip_tok = flip, .stop = &stop,
                         .installed = &installed, .holder = true}};
  for (int i = 0; i < 2; i++) {
    atomic_init(&args[i].done_gen, 0);
    atomic_init(&args[i].held_gen, 0);
  }
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
  for (int i = 0; i < SWAPS; i++) {
    /* The holder holds the snapshot in force before it is swapped out. */
    wait_at_least(&args[1].held_gen, atomic_load(&installed), "the holding reader", i);
    write_file(keys_path, i % 2 ? set3 : set23);
    assert_int_equal(keyring_poll(kr), 1);
    uint64_t g = current_gen(kr);
    atomic_store(&installed, g);
    wait_at_least(&args[0].done_gen, g, "the free reader", i);
  }
  wait_at_least(&args[1].held_gen, atomic_load(&installed), "the holding reader", SWAPS);
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
  print_message("free reader: k1 accepted %d, refused %d; holder: %d snapshots held across a "
                "swap\n", args[0].accepted, args[0].refused, args[1].held_across);
  /* The swaps alternate the sets, and the free reader finished a pass on
   * every one: both outcomes, each at least once per set it met. */
  assert_true(args[0].accepted >= SWAPS / 2);
  assert_true(args[0].refused >= SWAPS / 2);
  assert_int_equal(args[1].held_across, SWAPS);
  keyring_destroy(kr);
}

static void test_the_watching_thread_starts_and_stops(void **state) {
  (void)state;
  write_file(keys_path, set3);
  keyring *kr = open_ring(keys_path, NULL);
  assert_int_equal(keyring_start(kr), 0);
  keyring_destroy(kr); /* joins the thread */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_the_kid_selects_the_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_kid_or_an_unknown_kid_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_up_refusals_name_the_key_or_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_reload_swaps_the_key_set_and_the_cache_misses, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_page_keys_follow_the_key_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_broken_file_keeps_the_last_good_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_fifo_dir_device_or_huge_file_is_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_a_symlink_swap_is_seen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revocations_apply_and_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_single_secret_mode_with_revocations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_readers_never_see_half_a_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_the_watching_thread_starts_and_stops, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
