/* Micro-benchmark of auth/jwt_verify.c, in single-secret and key-set mode,
 * of the per-call path of the auth interceptor (auth/keyring.c snapshot and
 * auth/token_cache.c), and of the HMAC strategies it could use. A standalone
 * program, not a test. Build (after the RelWithDebInfo tree build-test) and
 * run from the repo root:
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Ibuild-test/layers/auth -Ibuild-test/layers/core \
 *       bench/jwt_micro.c build-test/libproduct_auth.a build-test/libproduct_core.a \
 *       $(pkg-config --cflags --libs libjwt jansson openssl libprotobuf-c) -lpthread \
 *       -o /tmp/jwt_micro && /tmp/jwt_micro
 *
 * Prints nanoseconds per operation (best of 5 rounds). */
#define OPENSSL_SUPPRESS_DEPRECATED /* HMAC_CTX is measured for comparison only */
#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt_verify.h"
#include "auth/keyring.h"
#include "auth/token_cache.h"

#define SECRET "bench-secret-0123456789abcdef-0123456789abcdef"
#define NOW INT64_C(1700000000)
#define ROUNDS 5

/* {"alg":"HS256","typ":"JWT"} . {"sub":"alice","user_id":"alice","role":"admin",
 * "iss":"product-service","aud":"client","iat":1700000000,"nbf":1700000000,
 * "exp":1700003600}, signed with SECRET; the signature is filled in main. */
static char token[1024];

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef void (*bench_fn)(int iterations);

static void report(const char *name, bench_fn fn, int iterations) {
  double best = 1e300;
  fn(iterations / 10); /* warm up */
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_ns();
    fn(iterations);
    double per = (now_ns() - t0) / iterations;
    if (per < best)
      best = per;
  }
  printf("  %-44s %8.0f ns\n", name, best);
}

static size_t b64url(const unsigned char *in, size_t len, char *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned n = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8) | in[i + 2];
    out[o++] = a[n >> 18];
    out[o++] = a[(n >> 12) & 63];
    out[o++] = a[(n >> 6) & 63];
    out[o++] = a[n & 63];
  }
  if (len - i == 1) {
    out[o++] = a[in[i] >> 2];
    out[o++] = a[(in[i] & 3) << 4];
  } else if (len - i == 2) {
    unsigned n = ((unsigned)in[i] << 8) | in[i + 1];
    out[o++] = a[n >> 10];
    out[o++] = a[(n >> 4) & 63];
    out[o++] = a[(n & 15) << 2];
  }
  out[o] = '\0';
  return o;
}

static void make_token_with(char *out, const char *h, const char *secret) {
  const char *p = "{\"sub\":\"alice\",\"user_id\":\"alice\",\"role\":\"admin\","
                  "\"iss\":\"product-service\",\"aud\":\"client\",\"iat\":1700000000,"
                  "\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"SLqlUbiiRAtEVSNF1EfIzg\"}";
  char *token = out;
  size_t o = b64url((const unsigned char *)h, strlen(h), token);
  token[o++] = '.';
  o += b64url((const unsigned char *)p, strlen(p), token + o);
  unsigned char mac[32];
  unsigned int mac_len;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)token, o, mac, &mac_len);
  token[o++] = '.';
  b64url(mac, mac_len, token + o);
}

static void make_token(void) {
  make_token_with(token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", SECRET);
}

/* ------------------------------------------------------------ verifier --- */
static jwt_verifier *verifier;
static volatile int sink;

static void b_verify_valid(int n) {
  size_t len = strlen(token);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier, token, len, NOW, NULL) == JWT_OK;
}

static char bad_sig[1024];
static void b_verify_bad_signature(int n) {
  size_t len = strlen(bad_sig);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier, bad_sig, len, NOW, NULL) == JWT_BAD_SIGNATURE;
}

static char garbage[1024];
static void b_verify_malformed(int n) {
  size_t len = strlen(garbage);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier, garbage, len, NOW, NULL) == JWT_MALFORMED;
}

/* ------------------------------------------------- key-set mode (3 keys) --- */
/* The key named last is the one the fast header match reaches last. */
#define KEY1 "bench-key-one-0123456789abcdef-0123456789"
#define KEY2 "bench-key-two-0123456789abcdef-0123456789"
#define KEY3 "bench-key-three-0123456789abcdef-01234567"
static jwt_verifier *verifier3;
static char tok3[1024], tok3_bad[1024], tok3_unknown[1024],
    tok3_parsed[1024];

static void b_keys_valid(int n) {
  size_t len = strlen(tok3);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier3, tok3, len, NOW, NULL) == JWT_OK;
}

static void b_keys_bad_signature(int n) {
  size_t len = strlen(tok3_bad);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier3, tok3_bad, len, NOW, NULL) == JWT_BAD_SIGNATURE;
}

static void b_keys_unknown_kid(int n) {
  size_t len = strlen(tok3_unknown);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier3, tok3_unknown, len, NOW, NULL) == JWT_UNKNOWN_KID;
}

static void b_keys_parsed_header(int n) {
  size_t len = strlen(tok3_parsed);
  for (int i = 0; i < n; i++)
    sink += jwt_verify(verifier3, tok3_parsed, len, NOW, NULL) == JWT_OK;
}

/* ------------------------------------------------- the interceptor's path --- */
static keyring *ring;
static token_cache *cache;

static void b_path_single_miss(int n) {
  size_t len = strlen(token);
  jwt_identity id;
  for (int i = 0; i < n; i++) sink += jwt_verify(verifier, token, len, NOW, &id) == JWT_OK;
}

static void b_path_keyring_miss(int n) {
  size_t len = strlen(tok3);
  jwt_identity id;
  for (int i = 0; i < n; i++) {
    keyring_snap *s = keyring_acquire(ring);
    sink += keyring_verify(s, tok3, len, NOW, &id) == JWT_OK;
    keyring_release(s);
  }
}

static void b_path_single_hit(int n) {
  size_t len = strlen(token);
  jwt_identity id;
  for (int i = 0; i < n; i++) sink += token_cache_get(cache, token, len, 0, NOW, 30, &id);
}

static void b_path_keyring_hit(int n) {
  size_t len = strlen(tok3);
  jwt_identity id;
  for (int i = 0; i < n; i++) {
    keyring_snap *s = keyring_acquire(ring);
    sink += token_cache_get(cache, tok3, len, keyring_snap_generation(s), NOW, 30, &id);
    keyring_release(s);
  }
}

static int setup_keys(void) {
  jwt_key keys[3] = {
      {.kid = "k1", .secret = (const unsigned char *)KEY1, .secret_len = strlen(KEY1)},
      {.kid = "k2", .secret = (const unsigned char *)KEY2, .secret_len = strlen(KEY2)},
      {.kid = "k3", .secret = (const unsigned char *)KEY3, .secret_len = strlen(KEY3)},
  };
  jwt_verifier_options o = {.issuer = "product-service", .audience = "client", .leeway_s = 30,
                            .keys = keys, .n_keys = 3};
  if (jwt_verifier_create(&o, &verifier3) != 0) return -1;
  /* mint-token's (libjwt's) and PyJWT's header layout. */
  make_token_with(tok3, "{\"alg\":\"HS256\",\"kid\":\"k3\",\"typ\":\"JWT\"}", KEY3);
  snprintf(tok3_bad, sizeof(tok3_bad), "%s", tok3);
  char *last = tok3_bad + strlen(tok3_bad) - 2;
  *last = *last == 'A' ? 'B' : 'A';
  make_token_with(tok3_unknown, "{\"alg\":\"HS256\",\"kid\":\"k9\",\"typ\":\"JWT\"}", KEY3);
  make_token_with(tok3_parsed, "{\"typ\":\"JWT\",\"kid\":\"k3\",\"alg\":\"HS256\"}", KEY3);
  if (jwt_verify(verifier3, tok3, strlen(tok3), NOW, NULL) != JWT_OK ||
      jwt_verify(verifier3, tok3_parsed, strlen(tok3_parsed), NOW, NULL) != JWT_OK)
    return -1;

  /* A keyring on a key-set file with the same three keys. */
  char path[] = "/tmp/jwt_micro_keys_XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) return -1;
  const char *ks[3] = {KEY1, KEY2, KEY3};
  fprintf(f, "{\"keys\":[");
  for (int i = 0; i < 3; i++) {
    char b[128];
    b64url((const unsigned char *)ks[i], strlen(ks[i]), b);
    fprintf(f, "%s{\"kty\":\"oct\",\"kid\":\"k%d\",\"k\":\"%s\"}", i ? "," : "", i + 1, b);
  }
  fprintf(f, "]}");
  fclose(f);
  jwt_verifier_options base = {.issuer = "product-service", .audience = "client", .leeway_s = 30};
  keyring_options ko = {.keys_path = path, .base = &base};
  char err[256];
  int rc = keyring_create(&ko, &ring, err, sizeof(err));
  unlink(path);
  if (rc != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  cache = token_cache_create();
  jwt_identity id;
  keyring_snap *s = keyring_acquire(ring);
  if (keyring_verify(s, tok3, strlen(tok3), NOW, &id) != JWT_OK) return -1;
  token_cache_put(cache, tok3, strlen(tok3), keyring_snap_generation(s), &id);
  keyring_release(s);
  if (jwt_verify(verifier, token, strlen(token), NOW, &id) != JWT_OK) return -1;
  token_cache_put(cache, token, strlen(token), 0, &id);
  return 0;
}

static void b_libjwt_decode(int n) {
  for (int i = 0; i < n; i++) {
    jwt_t *j = NULL;
    sink += jwt_decode(&j, token, (const unsigned char *)SECRET, (int)strlen(SECRET));
    jwt_free(j);
  }
}

/* --------------------------------------------------- HMAC strategies --- */
static const unsigned char *signing_input;
static size_t signing_len;
static EVP_MAC *mac_alg;
static EVP_MAC_CTX *mac_template;
static HMAC_CTX *hmac_template;
static EVP_MD_CTX *inner_template, *outer_template;

static void b_evp_mac_dup(int n) {
  unsigned char out[32];
  size_t ol;
  for (int i = 0; i < n; i++) {
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(mac_template);
    EVP_MAC_update(c, signing_input, signing_len);
    EVP_MAC_final(c, out, &ol, sizeof(out));
    EVP_MAC_CTX_free(c);
    sink += out[0];
  }
}

static void b_evp_mac_fresh(int n) {
  unsigned char out[32];
  size_t ol;
  char digest[] = "SHA256";
  OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                    OSSL_PARAM_construct_end()};
  for (int i = 0; i < n; i++) {
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac_alg);
    EVP_MAC_init(c, (const unsigned char *)SECRET, strlen(SECRET), p);
    EVP_MAC_update(c, signing_input, signing_len);
    EVP_MAC_final(c, out, &ol, sizeof(out));
    EVP_MAC_CTX_free(c);
    sink += out[0];
  }
}

static void b_hmac_oneshot(int n) {
  unsigned char out[32];
  unsigned int ol;
  for (int i = 0; i < n; i++) {
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), signing_input, signing_len, out, &ol);
    sink += out[0];
  }
}

static void b_hmac_ctx_copy(int n) {
  unsigned char out[32];
  unsigned int ol;
  for (int i = 0; i < n; i++) {
    HMAC_CTX *c = HMAC_CTX_new();
    HMAC_CTX_copy(c, hmac_template);
    HMAC_Update(c, signing_input, signing_len);
    HMAC_Final(c, out, &ol);
    HMAC_CTX_free(c);
    sink += out[0];
  }
}

/* RFC 2104 by hand: SHA-256 states with the padded key already absorbed. */
static void b_md_ctx_copy_pads(int n) {
  unsigned char inner[32], out[32];
  unsigned int ol;
  for (int i = 0; i < n; i++) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_MD_CTX_copy_ex(c, inner_template);
    EVP_DigestUpdate(c, signing_input, signing_len);
    EVP_DigestFinal_ex(c, inner, &ol);
    EVP_MD_CTX_copy_ex(c, outer_template);
    EVP_DigestUpdate(c, inner, sizeof(inner));
    EVP_DigestFinal_ex(c, out, &ol);
    EVP_MD_CTX_free(c);
    sink += out[0];
  }
}

/* ------------------------------------------------------ JSON parsing --- */
static void b_json_payload(int n) {
  const char *p = "{\"sub\":\"alice\",\"user_id\":\"alice\",\"role\":\"admin\","
                  "\"iss\":\"product-service\",\"aud\":\"client\",\"iat\":1700000000,"
                  "\"nbf\":1700000000,\"exp\":1700003600}";
  size_t len = strlen(p);
  json_error_t e;
  for (int i = 0; i < n; i++) {
    json_t *j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &e);
    sink += j != NULL;
    json_decref(j);
  }
}

static void setup_hmac(void) {
  signing_input = (const unsigned char *)token;
  signing_len = (size_t)(strrchr(token, '.') - token);
  mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
  mac_template = EVP_MAC_CTX_new(mac_alg);
  char digest[] = "SHA256";
  OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                    OSSL_PARAM_construct_end()};
  EVP_MAC_init(mac_template, (const unsigned char *)SECRET, strlen(SECRET), p);
  hmac_template = HMAC_CTX_new();
  HMAC_Init_ex(hmac_template, SECRET, (int)strlen(SECRET), EVP_sha256(), NULL);
  unsigned char ipad[64], opad[64];
  memset(ipad, 0x36, sizeof(ipad));
  memset(opad, 0x5c, sizeof(opad));
  for (size_t i = 0; i < strlen(SECRET); i++) { /* SECRET is shorter than a block */
    ipad[i] ^= (unsigned char)SECRET[i];
    opad[i] ^= (unsigned char)SECRET[i];
  }
  inner_template = EVP_MD_CTX_new();
  outer_template = EVP_MD_CTX_new();
  EVP_DigestInit_ex(inner_template, EVP_sha256(), NULL);
  EVP_DigestUpdate(inner_template, ipad, sizeof(ipad));
  EVP_DigestInit_ex(outer_template, EVP_sha256(), NULL);
  EVP_DigestUpdate(outer_template, opad, sizeof(opad));
}

int main(void) {
  make_token();
  jwt_verifier_options o = {.secret = (const unsigned char *)SECRET,
                            .secret_len = strlen(SECRET),
                            .issuer = "product-service",
                            .audience = "client",
                            .leeway_s = 30};
  if (jwt_verifier_create(&o, &verifier) != 0 ||
      jwt_verify(verifier, token, strlen(token), NOW, NULL) != JWT_OK) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  snprintf(bad_sig, sizeof(bad_sig), "%s", token);
  char *last = bad_sig + strlen(bad_sig) - 2;
  *last = *last == 'A' ? 'B' : 'A';
  snprintf(garbage, sizeof(garbage), "%s", token);
  garbage[strlen(garbage) / 2] = ' ';
  setup_hmac();
  if (setup_keys() != 0) {
    fprintf(stderr, "key-set setup failed\n");
    return 1;
  }

  printf("token: %zu bytes (key-set token: %zu)\n", strlen(token), strlen(tok3));
  printf("jwt_verify, single secret (whole check):\n");
  report("valid token", b_verify_valid, 200000);
  report("bad signature", b_verify_bad_signature, 200000);
  report("malformed (space in the middle)", b_verify_malformed, 200000);
  printf("jwt_verify, key set of 3 keys, kid of the last key:\n");
  report("valid token", b_keys_valid, 200000);
  report("bad signature", b_keys_bad_signature, 200000);
  report("unknown kid (no HMAC)", b_keys_unknown_kid, 200000);
  report("valid, header layout that needs a parse", b_keys_parsed_header, 200000);
  printf("per call in the auth interceptor:\n");
  report("single: verify (cache miss)", b_path_single_miss, 200000);
  report("key set: acquire + verify + release (miss)", b_path_keyring_miss, 200000);
  report("single: cache hit", b_path_single_hit, 2000000);
  report("key set: acquire + cache hit + release", b_path_keyring_hit, 2000000);
  report("libjwt jwt_decode, for reference", b_libjwt_decode, 100000);
  printf("HMAC-SHA256 over header.payload:\n");
  report("EVP_MAC_CTX_dup of a keyed template (used)", b_evp_mac_dup, 200000);
  report("EVP_MAC_CTX_new + EVP_MAC_init per call", b_evp_mac_fresh, 200000);
  report("HMAC() one-shot", b_hmac_oneshot, 200000);
  report("HMAC_CTX_copy (deprecated API)", b_hmac_ctx_copy, 200000);
  report("EVP_MD_CTX_copy_ex of ipad/opad states", b_md_ctx_copy_pads, 200000);
  printf("JSON:\n");
  report("json_loadb of the payload", b_json_payload, 200000);

  jwt_verifier_destroy(verifier);
  jwt_verifier_destroy(verifier3);
  token_cache_destroy(cache);
  keyring_destroy(ring);
  EVP_MAC_CTX_free(mac_template);
  EVP_MAC_free(mac_alg);
  HMAC_CTX_free(hmac_template);
  EVP_MD_CTX_free(inner_template);
  EVP_MD_CTX_free(outer_template);
  return 0;
}
