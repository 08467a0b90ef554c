/* HS256 bearer-token validation (product-server(8), "Authentication and
 * authorization"). libjwt's jwt_decode is deliberately not used here: it is
 * slow on the hot path, lenient about encoding and compares signatures with
 * strcmp. Instead each step is explicit and strict:
 *
 *   1. size cap, then the whole value must be three non-empty segments of
 *      canonical unpadded base64url (no byte outside the alphabet anywhere);
 *   2. the header is parsed (it is needed to know the algorithm): alg must be
 *      exactly "HS256" and there must be no "crit";
 *   3. with a key set, the header's kid selects the key, and an unknown kid
 *      is refused here, before any signature work;
 *   4. the signature (exactly 32 bytes) is compared in constant time with an
 *      HMAC-SHA256 computed from a key prepared once at creation;
 *   5. only then is the payload parsed and its claims checked.
 *
 * The verifier is immutable after creation: each call duplicates the
 * prepared MAC context, so any number of threads may verify at once. */
#include "auth/jwt_verify.h"

#include "core/b64url.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

/* Tokens longer than this are rejected before any work. */
#define JWT_TOKEN_MAX 8192
#define JWT_SIG_LEN 32
#define JWT_SIG_B64_LEN 43
/* Decoded segments are at most 3/4 of the token. */
#define JWT_SEG_BUF_MAX ((JWT_TOKEN_MAX / 4) * 3 + 3)

/* Common header layouts per key, as encoded on the wire, recognised without a
 * JSON parse (see common_headers below). */
#define KID_LAYOUTS 3

typedef struct vkey {
  char *kid;
  size_t kid_len;
  EVP_MAC_CTX *mac_template;
  char *hdr64[KID_LAYOUTS]; /* NULL when the kid would need JSON escaping */
  size_t hdr64_len[KID_LAYOUTS];
} vkey;

struct jwt_verifier {
  EVP_MAC_CTX *mac_template; /* single-secret mode: HMAC-SHA256 keyed once; only ever duplicated */
  vkey *keys;                /* key-set mode */
  size_t n_keys;
  char *issuer;
  size_t issuer_len;
  char *audience;
  size_t audience_len;
  int64_t leeway_s;
};

const char *jwt_result_reason(jwt_result r) {
  switch (r) {
  case JWT_OK:
    return "ok";
  case JWT_MALFORMED:
    return "malformed";
  case JWT_BAD_ALG:
    return "bad_alg";
  case JWT_UNSUPPORTED_CRIT:
    return "unsupported_crit";
  case JWT_BAD_SIGNATURE:
    return "bad_signature";
  case JWT_EXPIRED:
    return "expired";
  case JWT_NOT_YET_VALID:
    return "not_yet_valid";
  case JWT_ISSUED_IN_FUTURE:
    return "issued_in_future";
  case JWT_WRONG_ISSUER:
    return "wrong_issuer";
  case JWT_WRONG_AUDIENCE:
    return "wrong_audience";
  case JWT_BAD_CLAIMS:
    return "bad_claims";
  case JWT_UNKNOWN_KID:
    return "unknown_kid";
  case JWT_REVOKED:
    return "revoked";
  case JWT_INTERNAL:
    return "internal";
  }
  return "internal";
}

static char *dup_bytes(const char *s, size_t *len_out) {
  size_t len = strlen(s);
  char *d = malloc(len + 1);
  if (d == NULL)
    return NULL;
  memcpy(d, s, len + 1);
  *len_out = len;
  return d;
}

/* An HMAC-SHA256 context keyed with key[0..len). The key lives only inside
 * the keyed template (OpenSSL wipes it when the context is freed); we keep
 * no raw copy of our own. */
static EVP_MAC_CTX *keyed_template(const unsigned char *key, size_t len) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (ctx && EVP_MAC_init(ctx, key, len, params) != 1) {
    EVP_MAC_CTX_free(ctx);
    ctx = NULL;
  }
  EVP_MAC_free(mac);
  return ctx;
}

/* A kid byte that JSON writes as itself and that needs no UTF-8 check:
 * printable ASCII but the quote and the backslash. */
static bool kid_byte_is_plain(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

static bool kid_is_plain(const char *kid) {
  for (const unsigned char *p = (const unsigned char *)kid; *p; p++)
    if (!kid_byte_is_plain(*p)) return false;
  return true;
}

/* The header layouts libjwt (mint-token), PyJWT (sorted keys) and jose emit,
 * as the JSON text before and after the kid. */
static const struct {
  const char *pre, *post;
} kid_shapes[KID_LAYOUTS] = {
    {"{\"alg\":\"HS256\",\"kid\":\"", "\",\"typ\":\"JWT\"}"},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"", "\"}"},
    {"{\"alg\":\"HS256\",\"kid\":\"", "\"}"},
};

/* When the decoded header is one of kid_shapes with a plain kid, points at
 * the kid: such a text is a valid header (alg HS256, no crit, no duplicate)
 * and its kid is exactly those bytes, so no JSON parse is needed. */
static bool kid_of_shape(const unsigned char *h, size_t len, const char **kid, size_t *kid_len) {
  for (int i = 0; i < KID_LAYOUTS; i++) {
    size_t pre = strlen(kid_shapes[i].pre), post = strlen(kid_shapes[i].post);
    if (len < pre + post + 1 || memcmp(h, kid_shapes[i].pre, pre) != 0 ||
        memcmp(h + len - post, kid_shapes[i].post, post) != 0)
      continue;
    size_t n = len - pre - post;
    bool plain = true;
    for (size_t j = 0; j < n && plain; j++) plain = kid_byte_is_plain(h[pre + j]);
    if (!plain)
      continue;
    *kid = (const char *)h + pre;
    *kid_len = n;
    return true;
  }
  return false;
}

static int vkey_init(vkey *k, const jwt_key *src) {
  if (!src->kid || !src->kid[0] || !src->secret || src->secret_len == 0) return -1;
  if (!(k->kid = dup_bytes(src->kid, &k->kid_len))) return -1;
  if (!(k->mac_template = keyed_template(src->secret, src->secret_len))) return -1;
  if (!kid_is_plain(k->kid)) return 0;
  for (int i = 0; i < KID_LAYOUTS; i++) {
    size_t cap = k->kid_len + 64;
    char *json = malloc(cap);
    if (!json) return -1;
    int n = snprintf(json, cap, "%s%s%s", kid_shapes[i].pre, k->kid, kid_shapes[i].post);
    k->hdr64[i] = n > 0 && (size_t)n < cap
                      ? b64url_encode_alloc((const unsigned char *)json, (size_t)n, &k->hdr64_len[i])
                      : NULL;
    free(json);
    if (!k->hdr64[i]) return -1;
  }
  return 0;
}

int jwt_verifier_create(const jwt_verifier_options *opt, jwt_verifier **out) {
  int rc = -1;
  jwt_verifier *v = NULL;

  if (out == NULL)
    return -1;
  *out = NULL;
  if (opt == NULL || opt->issuer == NULL || opt->audience == NULL || opt->leeway_s < 0)
    return -1;
  if (opt->n_keys == 0 && (opt->secret == NULL || opt->secret_len == 0))
    return -1;

  v = calloc(1, sizeof(*v));
  if (v == NULL)
    goto cleanup;
  v->leeway_s = opt->leeway_s;
  v->issuer = dup_bytes(opt->issuer, &v->issuer_len);
  v->audience = dup_bytes(opt->audience, &v->audience_len);
  if (v->issuer == NULL || v->audience == NULL)
    goto cleanup;

  if (opt->n_keys == 0) {
    v->mac_template = keyed_template(opt->secret, opt->secret_len);
    if (v->mac_template == NULL)
      goto cleanup;
  } else {
    v->keys = calloc(opt->n_keys, sizeof(*v->keys));
    if (v->keys == NULL)
      goto cleanup;
    for (size_t i = 0; i < opt->n_keys; i++) {
      v->n_keys = i + 1; /* what vkey_init allocated is freed by destroy */
      if (vkey_init(&v->keys[i], &opt->keys[i]) != 0)
        goto cleanup;
    }
  }

  *out = v;
  v = NULL;
  rc = 0;
cleanup:
  jwt_verifier_destroy(v);
  return rc;
}

void jwt_verifier_destroy(jwt_verifier *v) {
  if (v == NULL)
    return;
  EVP_MAC_CTX_free(v->mac_template); /* cleanses the keyed HMAC state */
  for (size_t i = 0; i < v->n_keys; i++) {
    free(v->keys[i].kid);
    EVP_MAC_CTX_free(v->keys[i].mac_template);
    for (int l = 0; l < KID_LAYOUTS; l++) free(v->keys[i].hdr64[l]);
  }
  free(v->keys);
  free(v->issuer);
  free(v->audience);
  free(v);
}

/* Parses a decoded segment as one JSON object. Duplicate keys are refused
 * (two "alg" or two "exp" could mean different things to different readers)
 * and jansson refuses \u0000 in strings unless asked to allow it. */
static json_t *parse_object(const unsigned char *buf, size_t len) {
  json_error_t err;
  json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
  if (j != NULL && !json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  return j;
}

static bool json_string_equals(const json_t *s, const char *want, size_t want_len) {
  return json_is_string(s) && json_string_length(s) == want_len &&
         memcmp(json_string_value(s), want, want_len) == 0;
}

static jwt_result check_header(const json_t *header) {
  const json_t *alg = json_object_get(header, "alg");
  if (!json_string_equals(alg, "HS256", 5))
    return JWT_BAD_ALG;
  if (json_object_get(header, "crit") != NULL)
    return JWT_UNSUPPORTED_CRIT;
  return JWT_OK;
}

/* The headers that libjwt, PyJWT, jsonwebtoken and jose emit for HS256, as
 * they appear on the wire. Each decodes to a fixed JSON text that passes
 * check_header, so recognising the bytes saves a JSON parse per call without
 * accepting anything the full path would refuse. */
static const struct {
  const char *b64;
  size_t len;
} common_headers[] = {
    {"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", 36}, /* {"alg":"HS256","typ":"JWT"} */
    {"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9", 36}, /* {"typ":"JWT","alg":"HS256"} */
    {"eyJhbGciOiJIUzI1NiJ9", 20},                 /* {"alg":"HS256"} */
};

static bool is_common_header(const char *h64, size_t len) {
  for (size_t i = 0; i < sizeof(common_headers) / sizeof(common_headers[0]); i++) {
    if (len == common_headers[i].len && memcmp(h64, common_headers[i].b64, len) == 0)
      return true;
  }
  return false;
}

/* Key-set mode: a header that is byte for byte one of a key's common
 * layouts names that key (and passes check_header) without a parse. */
static const EVP_MAC_CTX *key_by_header(const jwt_verifier *v, const char *h64, size_t len) {
  for (size_t k = 0; k < v->n_keys; k++) {
    for (int l = 0; l < KID_LAYOUTS; l++) {
      if (v->keys[k].hdr64[l] && v->keys[k].hdr64_len[l] == len &&
          memcmp(v->keys[k].hdr64[l], h64, len) == 0)
        return v->keys[k].mac_template;
    }
  }
  return NULL;
}

/* The key kid[0..len) names; NULL for an unknown one. */
static const EVP_MAC_CTX *key_by_kid(const jwt_verifier *v, const char *kid, size_t len) {
  for (size_t k = 0; k < v->n_keys; k++) {
    if (v->keys[k].kid_len == len && memcmp(v->keys[k].kid, kid, len) == 0)
      return v->keys[k].mac_template;
  }
  return NULL;
}

static jwt_result check_signature(const EVP_MAC_CTX *tmpl, const char *signed_part,
                                  size_t signed_len, const unsigned char *sig) {
  jwt_result r = JWT_INTERNAL;
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(tmpl);
  if (ctx == NULL)
    goto cleanup;
  if (EVP_MAC_update(ctx, (const unsigned char *)signed_part, signed_len) != 1 ||
      EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) != 1 || mac_len != JWT_SIG_LEN)
    goto cleanup;
  r = CRYPTO_memcmp(mac, sig, JWT_SIG_LEN) == 0 ? JWT_OK : JWT_BAD_SIGNATURE;
cleanup:
  OPENSSL_cleanse(mac, sizeof(mac));
  EVP_MAC_CTX_free(ctx);
  return r;
}

/* exp, nbf, iat: absent is allowed only where the contract says so; present
 * must be a JSON integer (not a real, string or boolean). */
static bool get_time_claim(const json_t *payload, const char *name, bool *present,
                           int64_t *value) {
  const json_t *j = json_object_get(payload, name);
  *present = j != NULL;
  if (j == NULL)
    return true;
  if (!json_is_integer(j))
    return false;
  *value = (int64_t)json_integer_value(j);
  return true;
}

/* a + b clamped to the int64 range; b is never negative here. */
static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static int64_t sat_sub(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_sub_overflow(a, b, &r) ? INT64_MIN : r;
}

static jwt_result check_audience(const jwt_verifier *v, const json_t *aud) {
  if (json_is_string(aud))
    return json_string_equals(aud, v->audience, v->audience_len) ? JWT_OK : JWT_WRONG_AUDIENCE;
  if (!json_is_array(aud))
    return JWT_BAD_CLAIMS;
  bool found = false;
  size_t i;
  const json_t *el;
  json_array_foreach(aud, i, el) {
    if (!json_is_string(el))
      return JWT_BAD_CLAIMS;
    if (json_string_equals(el, v->audience, v->audience_len))
      found = true;
  }
  return found ? JWT_OK : JWT_WRONG_AUDIENCE;
}

/* Types first (a claim of the wrong type is bad_claims whatever its value),
 * then times, then issuer and audience. */
static jwt_result check_claims(const jwt_verifier *v, const json_t *payload, int64_t now,
                               jwt_identity *id) {
  bool has_exp, has_nbf, has_iat;
  int64_t exp = 0, nbf = INT64_MIN, iat = 0;
  if (!get_time_claim(payload, "exp", &has_exp, &exp) || !has_exp)
    return JWT_BAD_CLAIMS;
  if (!get_time_claim(payload, "nbf", &has_nbf, &nbf) ||
      !get_time_claim(payload, "iat", &has_iat, &iat))
    return JWT_BAD_CLAIMS;

  const json_t *iss = json_object_get(payload, "iss");
  const json_t *aud = json_object_get(payload, "aud");
  const json_t *sub = json_object_get(payload, "sub");
  const json_t *role = json_object_get(payload, "role");
  if (!json_is_string(iss) || aud == NULL)
    return JWT_BAD_CLAIMS;
  /* The identity has fixed-size fields; a longer value is refused rather
   * than truncated, so two different subjects can never look alike. */
  if (!json_is_string(sub) || json_string_length(sub) == 0 ||
      json_string_length(sub) > JWT_SUB_MAX)
    return JWT_BAD_CLAIMS;
  if (role != NULL && (!json_is_string(role) || json_string_length(role) > JWT_ROLE_MAX))
    return JWT_BAD_CLAIMS;

  if (!(now < sat_add(exp, v->leeway_s)))
    return JWT_EXPIRED;
  if (has_nbf && !(now >= sat_sub(nbf, v->leeway_s)))
    return JWT_NOT_YET_VALID;
  if (has_iat && !(iat <= sat_add(now, v->leeway_s)))
    return JWT_ISSUED_IN_FUTURE;
  if (!json_string_equals(iss, v->issuer, v->issuer_len))
    return JWT_WRONG_ISSUER;
  jwt_result r = check_audience(v, aud);
  if (r != JWT_OK)
    return r;

  if (id != NULL) {
    memcpy(id->sub, json_string_value(sub), json_string_length(sub) + 1);
    id->has_role = role != NULL;
    if (role != NULL)
      memcpy(id->role, json_string_value(role), json_string_length(role) + 1);
    id->exp = exp;
    id->nbf = has_nbf ? nbf : INT64_MIN;
    id->has_iat = has_iat;
    id->iat = has_iat ? iat : 0;
    const json_t *jti = json_object_get(payload, "jti");
    if (json_is_string(jti) && json_string_length(jti) <= JWT_JTI_MAX) {
      memcpy(id->jti, json_string_value(jti), json_string_length(jti) + 1);
      id->has_jti = true;
    }
  }
  return JWT_OK;
}

jwt_result jwt_verify(const jwt_verifier *v, const char *token, size_t len, int64_t now,
                      jwt_identity *out) {
  jwt_result r = JWT_MALFORMED;
  json_t *header = NULL, *payload = NULL;
  unsigned char seg[JWT_SEG_BUF_MAX];
  unsigned char sig[JWT_SIG_LEN + 3];
  size_t seg_len = 0, sig_len = 0;

  if (out != NULL) {
    memset(out, 0, sizeof(*out));
    out->nbf = INT64_MIN;
  }
  if (v == NULL)
    return JWT_INTERNAL;
  if (token == NULL || len == 0 || len > JWT_TOKEN_MAX)
    return JWT_MALFORMED;

  /* One pass over every byte: alphabet and the two separators. */
  size_t dot[2], ndots = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)token[i];
    if (c == '.') {
      if (ndots == 2)
        return JWT_MALFORMED;
      dot[ndots++] = i;
    } else if (!b64url_is_alpha(c)) {
      return JWT_MALFORMED;
    }
  }
  if (ndots != 2 || dot[0] == 0 || dot[1] == dot[0] + 1 || dot[1] == len - 1)
    return JWT_MALFORMED;

  const char *h64 = token, *p64 = token + dot[0] + 1, *s64 = token + dot[1] + 1;
  size_t h64_len = dot[0], p64_len = dot[1] - dot[0] - 1, s64_len = len - dot[1] - 1;

  /* Key-set mode: the kid picks the key before any signature work. The
   * common layouts are recognised without a JSON parse: encoded, for a key
   * in the set; decoded, for any plain kid (so an unknown kid costs a
   * base64 decode, never an HMAC nor a parse). */
  const EVP_MAC_CTX *tmpl;
  bool header_known;
  if (v->n_keys == 0) {
    tmpl = v->mac_template;
    header_known = is_common_header(h64, h64_len);
  } else {
    tmpl = key_by_header(v, h64, h64_len);
    header_known = tmpl != NULL;
  }
  if (!header_known) {
    if (!b64url_decode(h64, h64_len, seg, sizeof(seg), &seg_len))
      goto cleanup;
    const char *kid = NULL;
    size_t kid_len = 0;
    if (v->n_keys > 0 && kid_of_shape(seg, seg_len, &kid, &kid_len)) {
      tmpl = key_by_kid(v, kid, kid_len);
    } else {
      header = parse_object(seg, seg_len);
      if (header == NULL)
        goto cleanup;
      r = check_header(header);
      if (r != JWT_OK)
        goto cleanup;
      const json_t *jkid = json_object_get(header, "kid");
      if (v->n_keys > 0 && json_is_string(jkid))
        tmpl = key_by_kid(v, json_string_value(jkid), json_string_length(jkid));
    }
    r = JWT_UNKNOWN_KID;
    if (tmpl == NULL)
      goto cleanup;
  }

  /* The payload's encoding is checked now, its content only once signed. */
  r = JWT_MALFORMED;
  if (!b64url_decode(p64, p64_len, seg, sizeof(seg), &seg_len))
    goto cleanup;
  /* The signature's alphabet was checked in the first pass; its decode
   * checks the last character's padding bits (a second spelling of the same
   * bytes is malformed). Well-formed but not 32 bytes (43 characters): it
   * cannot be HS256. */
  if (s64_len != JWT_SIG_B64_LEN) {
    r = b64url_is_canonical(s64, s64_len) ? JWT_BAD_SIGNATURE : JWT_MALFORMED;
    goto cleanup;
  }
  if (!b64url_decode(s64, s64_len, sig, sizeof(sig), &sig_len))
    goto cleanup;
  r = JWT_BAD_SIGNATURE;
  if (sig_len != JWT_SIG_LEN) /* 43 characters are 32 bytes: a guard, not a case */
    goto cleanup;
  r = check_signature(tmpl, token, dot[1], sig);
  if (r != JWT_OK)
    goto cleanup;

  r = JWT_MALFORMED;
  payload = parse_object(seg, seg_len);
  if (payload == NULL)
    goto cleanup;
  r = check_claims(v, payload, now, out);

cleanup:
  if (r != JWT_OK && out != NULL) {
    memset(out, 0, sizeof(*out));
    out->nbf = INT64_MIN;
  }
  json_decref(header);
  json_decref(payload);
  return r;
}
