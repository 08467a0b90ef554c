/* See jwks.h. Parsed with jansson (duplicate members refused, no \u0000 in
 * strings), k decoded with src/core/b64url.c (strict). */
#include "auth/jwks.h"

#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"
#include "core/file_read.h"

typedef struct key_store {
  char *kid;
  unsigned char *k;
  jwks_key pub;
} key_store;

struct jwks {
  size_t n;
  key_store *keys;
};

void jwks_kid_for_log(const char *kid, char *out, size_t outlen) {
  if (!outlen) return;
  size_t o = 0, i = 0;
  for (; kid[i] && o + 1 < outlen; i++) {
    unsigned char c = (unsigned char)kid[i];
    out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
  }
  if (kid[i] && outlen > 4) memcpy(out + outlen - 4, "...", 4), o = outlen - 1;
  out[o] = '\0';
}

void jwks_destroy(jwks *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->keys[i].kid);
    b64url_free(s->keys[i].k, s->keys[i].pub.k_len);
  }
  free(s->keys);
  free(s);
}

size_t jwks_count(const jwks *s) { return s ? s->n : 0; }

const jwks_key *jwks_key_at(const jwks *s, size_t i) { return i < s->n ? &s->keys[i].pub : NULL; }

const jwks_key *jwks_find(const jwks *s, const char *kid) {
  size_t len = strlen(kid);
  for (size_t i = 0; i < s->n; i++)
    if (s->keys[i].pub.kid_len == len && memcmp(s->keys[i].kid, kid, len) == 0)
      return &s->keys[i].pub;
  return NULL;
}

const jwks_key *jwks_signing_key(const jwks *s) {
  for (size_t i = s->n; i > 0; i--)
    if (s->keys[i - 1].pub.can_sign) return &s->keys[i - 1].pub;
  return NULL;
}

/* "key 2 (kid "a")" or "key 2" when the kid is not known yet. The index
 * counts from 0, as the array does. */
static void key_name(size_t i, const char *kid, char *out, size_t outlen) {
  if (!kid) {
    snprintf(out, outlen, "key %zu", i);
    return;
  }
  char safe[72];
  jwks_kid_for_log(kid, safe, sizeof safe);
  snprintf(out, outlen, "key %zu (kid \"%s\")", i, safe);
}

/* key_ops: absent, or exactly the set {sign, verify} or {verify}. */
static bool parse_ops(const json_t *ops, bool *can_sign) {
  *can_sign = true;
  if (!ops) return true;
  if (!json_is_array(ops)) return false;
  bool sign = false, verify = false;
  size_t i;
  const json_t *op;
  json_array_foreach(ops, i, op) {
    if (json_is_string(op) && strcmp(json_string_value(op), "sign") == 0 && !sign) sign = true;
    else if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0 && !verify)
      verify = true;
    else return false;
  }
  if (!verify) return false;
  *can_sign = sign;
  return true;
}

static int parse_key(const json_t *jk, size_t i, key_store *ks, const jwks *s, char *err,
                     size_t errlen) {
  char name[128];
  key_name(i, NULL, name, sizeof name);
  if (!json_is_object(jk)) {
    snprintf(err, errlen, "%s is not a JSON object", name);
    return -1;
  }
  const json_t *kid = json_object_get(jk, "kid");
  if (!json_is_string(kid) || json_string_length(kid) == 0) {
    snprintf(err, errlen, "%s has no kid (a non-empty string is required)", name);
    return -1;
  }
  if (json_string_length(kid) > JWKS_KID_MAX) {
    snprintf(err, errlen, "%s: the kid is longer than %d bytes", name, JWKS_KID_MAX);
    return -1;
  }
  const char *kid_s = json_string_value(kid);
  key_name(i, kid_s, name, sizeof name);
  for (size_t j = 0; j < i; j++) {
    if (strcmp(s->keys[j].kid, kid_s) == 0) {
      snprintf(err, errlen, "%s: the kid is also used by key %zu", name, j);
      return -1;
    }
  }
  const json_t *kty = json_object_get(jk, "kty");
  if (!json_is_string(kty) || strcmp(json_string_value(kty), "oct") != 0) {
    snprintf(err, errlen, "%s: kty must be \"oct\"", name);
    return -1;
  }
  const json_t *alg = json_object_get(jk, "alg");
  if (alg && !(json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0)) {
    snprintf(err, errlen, "%s: alg must be \"HS256\" when present", name);
    return -1;
  }
  bool can_sign;
  if (!parse_ops(json_object_get(jk, "key_ops"), &can_sign)) {
    snprintf(err, errlen, "%s: key_ops must be [\"sign\", \"verify\"] or [\"verify\"]", name);
    return -1;
  }
  const json_t *k = json_object_get(jk, "k");
  if (!json_is_string(k)) {
    snprintf(err, errlen, "%s has no k (the secret, unpadded base64url)", name);
    return -1;
  }
  size_t klen = json_string_length(k);
  /* Unpadded base64url of n bytes is ceil(4n / 3) characters: 5462 for the
   * cap (a multiple-of-4 bound would let 4098 bytes through). */
  if (klen > ((size_t)JWKS_KEY_MAX_LEN * 4 + 2) / 3) {
    snprintf(err, errlen, "%s: k is longer than %d bytes decoded", name, JWKS_KEY_MAX_LEN);
    return -1;
  }
  bool oom;
  if (!b64url_decode_alloc(json_string_value(k), klen, &ks->k, &ks->pub.k_len, &oom)) {
    snprintf(err, errlen, oom ? "%s: out of memory" : "%s: k is not unpadded base64url", name);
    return -1;
  }
  if (ks->pub.k_len < JWKS_KEY_MIN_LEN) {
    snprintf(err, errlen, "%s: k is %zu bytes decoded; at least %d are required", name,
             ks->pub.k_len, JWKS_KEY_MIN_LEN);
    return -1;
  }
  if (!(ks->kid = strdup(kid_s))) {
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
  }
  ks->pub.kid = ks->kid;
  ks->pub.kid_len = json_string_length(kid);
  ks->pub.k = ks->k;
  ks->pub.can_sign = can_sign;
  return 0;
}

/* jansson keeps k's text in more places than the parsed value (its lexer's
 * buffers, and on a parse error whatever it built so far) and frees them
 * without wiping. So every block jansson frees is wiped first: its free
 * function, process-wide, cleanses the whole block. Installed by the first
 * parse, which comes before any other thread uses jansson (key sets are
 * loaded at start); the functions stay compatible with blocks allocated
 * before (plain malloc). */
static void wiping_free(void *p) {
  if (!p) return;
  OPENSSL_cleanse(p, malloc_usable_size(p));
  free(p);
}

static void install_wiping_free(void) { json_set_alloc_funcs(malloc, wiping_free); }

static pthread_once_t wiping_once = PTHREAD_ONCE_INIT;

int jwks_parse(const char *text, size_t len, jwks **out, char *err, size_t errlen) {
  int rc = -1;
  json_error_t jerr;
  jwks *s = NULL;
  *out = NULL;
  pthread_once(&wiping_once, install_wiping_free);
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    /* Position only: jansson's text quotes the input near the error, which
     * may be a key's k. */
    snprintf(err, errlen, "not valid JSON (line %d, column %d)", jerr.line, jerr.column);
    goto done;
  }
  const json_t *keys = json_is_object(root) ? json_object_get(root, "keys") : NULL;
  if (!json_is_array(keys)) {
    snprintf(err, errlen, "not a JWK Set: {\"keys\": [...]} is required");
    goto done;
  }
  size_t n = json_array_size(keys);
  if (n == 0 || n > JWKS_MAX_KEYS) {
    snprintf(err, errlen, n ? "more than %d keys" : "the key set has no keys", JWKS_MAX_KEYS);
    goto done;
  }
  if (!(s = calloc(1, sizeof *s)) || !(s->keys = calloc(n, sizeof *s->keys))) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    int r = parse_key(json_array_get(keys, i), i, &s->keys[i], s, err, errlen);
    s->n = i + 1; /* what parse_key allocated is freed by jwks_destroy */
    if (r != 0) goto done;
  }
  *out = s;
  s = NULL;
  rc = 0;
done:
  jwks_destroy(s);
  json_decref(root); /* wiped block by block (wiping_free) */
  return rc;
}

int jwks_load_file(const char *path, jwks **out, char *err, size_t errlen) {
  char *buf;
  size_t len;
  char why[400];
  *out = NULL;
  if (file_read_all(path, "key set", JWKS_FILE_MAX, &buf, &len, err, errlen) != 0) return -1;
  int rc = jwks_parse(buf, len, out, why, sizeof why);
  if (rc != 0) snprintf(err, errlen, "key set %s: %s", path, why);
  file_read_free(buf, len);
  return rc;
}
