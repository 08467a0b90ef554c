/* libFuzzer target for auth/jwt_verify.c.
 *
 * Two kinds of input:
 *   - any bytes: verified as a token as they are. Oracle: a value with a byte
 *     outside base64url and '.' must be JWT_MALFORMED.
 *   - "SIGN:<header JSON>\n<payload JSON>": the harness encodes and signs it
 *     with the verifier's secret, so the fuzzer reaches the claim checks that
 *     a forged signature would never pass.
 * On JWT_OK the identity must be well formed. Violations abort. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt_verify.h"

/* A fixed test value, the same one the seed corpus is signed with. */
#define FUZZ_SECRET "fuzz-corpus-test-secret-not-used-anywhere-0123"
#define FUZZ_NOW INT64_C(1700000000)
#define FUZZ_CAP 12288

static jwt_verifier *fuzz_verifier(void) {
  static jwt_verifier *v;
  if (v == NULL) {
    jwt_verifier_options o = {.secret = (const unsigned char *)FUZZ_SECRET,
                              .secret_len = sizeof(FUZZ_SECRET) - 1,
                              .issuer = "product-service",
                              .audience = "client",
                              .leeway_s = 30};
    if (jwt_verifier_create(&o, &v) != 0)
      abort();
  }
  return v;
}

static size_t b64url(const unsigned char *in, size_t len, char *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t n = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    out[o++] = a[n >> 18];
    out[o++] = a[(n >> 12) & 63];
    out[o++] = a[(n >> 6) & 63];
    out[o++] = a[n & 63];
  }
  if (len - i == 1) {
    out[o++] = a[in[i] >> 2];
    out[o++] = a[(in[i] & 3) << 4];
  } else if (len - i == 2) {
    uint32_t n = ((uint32_t)in[i] << 8) | in[i + 1];
    out[o++] = a[n >> 10];
    out[o++] = a[(n >> 4) & 63];
    out[o++] = a[(n & 15) << 2];
  }
  return o;
}

static void check_identity(jwt_result r, const jwt_identity *id) {
  if (r > JWT_INTERNAL)
    abort();
  if (r != JWT_OK)
    return;
  size_t sub_len = strnlen(id->sub, sizeof(id->sub));
  if (sub_len == 0 || sub_len > JWT_SUB_MAX)
    abort();
  if (strnlen(id->role, sizeof(id->role)) > JWT_ROLE_MAX)
    abort();
  if (!id->has_role && id->role[0] != '\0')
    abort();
}

static void fuzz_raw(const uint8_t *data, size_t size) {
  jwt_identity id;
  jwt_result r = jwt_verify(fuzz_verifier(), (const char *)data, size, FUZZ_NOW, &id);
  check_identity(r, &id);
  for (size_t i = 0; i < size; i++) {
    uint8_t c = data[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok && r != JWT_MALFORMED)
      abort();
  }
}

static void fuzz_signed(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  if (nl == NULL)
    return;
  size_t hlen = (size_t)(nl - data), plen = size - hlen - 1;
  static char tok[FUZZ_CAP];
  if ((hlen + plen) / 3 * 4 + 64 > sizeof(tok))
    return;
  size_t o = b64url(data, hlen, tok);
  tok[o++] = '.';
  o += b64url(nl + 1, plen, tok + o);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), FUZZ_SECRET, (int)sizeof(FUZZ_SECRET) - 1, (const unsigned char *)tok, o,
           mac, &mac_len) == NULL)
    abort();
  tok[o++] = '.';
  o += b64url(mac, mac_len, tok + o);
  jwt_identity id;
  jwt_result r = jwt_verify(fuzz_verifier(), tok, o, FUZZ_NOW, &id);
  check_identity(r, &id);
  /* a correctly signed token never fails on its signature */
  if (r == JWT_BAD_SIGNATURE)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 5 && memcmp(data, "SIGN:", 5) == 0)
    fuzz_signed(data + 5, size - 5);
  else
    fuzz_raw(data, size);
  return 0;
}
