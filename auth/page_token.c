/* ListProducts page tokens; see page_token.h.
 *
 * Layout (77 bytes, then base64url without padding: 103 characters):
 *   [0]      version (1)
 *   [1..9)   created_us, big-endian two's complement
 *   [9..45)  id, NUL-padded to PAGE_CURSOR_ID_LEN
 *   [45..61) first 16 bytes of SHA-256(filter text)
 *   [61..77) first 16 bytes of HMAC-SHA256(key, bytes [0..61))
 * key = HMAC-SHA256(server secret, "product-service page-token v1"): a key of
 * its own, so a token MAC can never be confused with a JWT signature.
 *
 * Key-set mode (version 2, 85 bytes: 114 characters) puts an 8-byte key tag,
 * the first bytes of SHA-256(kid), after the version; the rest is shifted by
 * 8 and the MAC covers the tag too. key = the derivation above, from the
 * key's k. The tag picks the key without a MAC per key; it names the key
 * without showing its kid.
 *
 * Decoding accepts only the exact canonical encoding, so no two strings
 * decode to the same token. */
#include "auth/page_token.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"

#define PT_VERSION 1
#define PT_KEY_LABEL "product-service page-token v1"
#define PT_DIGEST_LEN 16
#define PT_MAC_LEN 16
#define PT_OFF_US 1
#define PT_OFF_ID (PT_OFF_US + 8)
#define PT_OFF_DIGEST (PT_OFF_ID + PAGE_CURSOR_ID_LEN)
#define PT_OFF_MAC (PT_OFF_DIGEST + PT_DIGEST_LEN)
#define PT_RAW_LEN (PT_OFF_MAC + PT_MAC_LEN)
#define PT_TEXT_LEN ((PT_RAW_LEN * 4 + 2) / 3) /* unpadded base64 */
#define PT_TAGGED_VERSION 2
#define PT_TAG_LEN 8
#define PT_TAGGED_RAW_LEN (PT_RAW_LEN + PT_TAG_LEN)
#define PT_TAGGED_TEXT_LEN ((PT_TAGGED_RAW_LEN * 4 + 2) / 3)

_Static_assert(PT_TEXT_LEN < PAGE_TOKEN_MAX, "a page token must fit PAGE_TOKEN_MAX");
_Static_assert(PT_TAGGED_TEXT_LEN < PAGE_TOKEN_MAX, "a page token must fit PAGE_TOKEN_MAX");

/* The MAC key lives only inside a keyed EVP_MAC_CTX template (duplicated per
 * token: OpenSSL 3's one-shot HMAC()/SHA256() fetch the algorithm and
 * allocate a context on every ListProducts), and SHA-256 is fetched once. */
struct page_key {
  EVP_MAC_CTX *mac_template;
  EVP_MD *sha256;
};

page_key *page_key_create(const unsigned char *secret, size_t secret_len) {
  static const unsigned char empty[1] = {0};
  if (!secret && secret_len) return NULL;
  if (secret_len > INT32_MAX) return NULL;
  unsigned char key[SHA256_DIGEST_LENGTH];
  unsigned int n = 0;
  EVP_MAC *hmac = NULL;
  page_key *k = calloc(1, sizeof(*k));
  if (!k) return NULL;
  if (!HMAC(EVP_sha256(), secret_len ? secret : empty, (int)secret_len,
            (const unsigned char *)PT_KEY_LABEL, strlen(PT_KEY_LABEL), key, &n) ||
      n != sizeof(key))
    goto fail;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  k->mac_template = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
  if (!k->sha256 || !k->mac_template ||
      EVP_MAC_init(k->mac_template, key, sizeof key, params) != 1)
    goto fail;
  EVP_MAC_free(hmac);
  OPENSSL_cleanse(key, sizeof key);
  return k;
fail:
  EVP_MAC_free(hmac);
  OPENSSL_cleanse(key, sizeof key);
  page_key_destroy(k);
  return NULL;
}

void page_key_destroy(page_key *k) {
  if (!k) return;
  EVP_MAC_CTX_free(k->mac_template); /* OpenSSL wipes the key it holds */
  EVP_MD_free(k->sha256);
  free(k);
}

/* The MAC over raw[0 .. mac_off), cut to PT_MAC_LEN. */
static int mac(const page_key *k, const unsigned char *raw, size_t mac_off,
               unsigned char out[PT_MAC_LEN]) {
  unsigned char full[SHA256_DIGEST_LENGTH];
  size_t n = 0;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->mac_template);
  int ok = ctx && EVP_MAC_update(ctx, raw, mac_off) == 1 &&
           EVP_MAC_final(ctx, full, &n, sizeof full) == 1 && n == sizeof full;
  EVP_MAC_CTX_free(ctx);
  if (!ok) return -1;
  memcpy(out, full, PT_MAC_LEN);
  return 0;
}

static int filter_digest(const page_key *k, const char *filter, size_t len,
                         unsigned char out[PT_DIGEST_LEN]) {
  unsigned char full[SHA256_DIGEST_LENGTH];
  if (EVP_Digest(filter ? filter : "", filter ? len : 0, full, NULL, k->sha256, NULL) != 1)
    return -1;
  memcpy(out, full, PT_DIGEST_LEN);
  return 0;
}

/* Fills the body after the first `at` bytes (version and tag): cursor,
 * filter digest, then the MAC over all before it. */
static int seal(const page_key *k, unsigned char *raw, size_t at, const page_cursor *cur,
                const char *filter, size_t filter_len) {
  size_t b = at - 1; /* the v1 offsets count the version byte */
  size_t id_len = strnlen(cur->id, sizeof(cur->id));
  if (id_len == 0 || id_len > PAGE_CURSOR_ID_LEN) return -1;
  uint64_t us = (uint64_t)cur->created_us;
  for (int i = 0; i < 8; i++) raw[b + PT_OFF_US + i] = (unsigned char)(us >> (56 - 8 * i));
  memcpy(raw + b + PT_OFF_ID, cur->id, id_len);
  if (filter_digest(k, filter, filter_len, raw + b + PT_OFF_DIGEST) != 0 ||
      mac(k, raw, b + PT_OFF_MAC, raw + b + PT_OFF_MAC) != 0)
    return -1;
  return 0;
}

int page_token_encode(const page_key *k, const page_cursor *cur, const char *filter,
                      size_t filter_len, char *out, size_t outlen) {
  unsigned char raw[PT_RAW_LEN];
  if (!k || !cur || !out || outlen < PT_TEXT_LEN + 1) return -1;
  memset(raw, 0, sizeof(raw));
  raw[0] = PT_VERSION;
  if (seal(k, raw, 1, cur, filter, filter_len) != 0) return -1;
  return b64url_encode(raw, PT_RAW_LEN, out, outlen, NULL);
}

/* The raw_len bytes of a canonical unpadded base64url token; -1 for any
 * other string. */
static int unpack(const char *token, size_t len, size_t raw_len, unsigned char *raw) {
  size_t n = 0;
  if (!token || len != b64url_encoded_len(raw_len) || !b64url_decode(token, len, raw, raw_len, &n) ||
      n != raw_len)
    return -1;
  return 0;
}

/* Checks the MAC, the version and the filter of a token whose body starts
 * after `at` bytes, and reads its cursor. */
static int open_body(const page_key *k, const unsigned char *raw, size_t at, int version,
                     const char *filter, size_t filter_len, page_cursor *out) {
  unsigned char want_mac[PT_MAC_LEN], want_digest[PT_DIGEST_LEN];
  size_t b = at - 1;
  if (mac(k, raw, b + PT_OFF_MAC, want_mac) != 0 ||
      CRYPTO_memcmp(want_mac, raw + b + PT_OFF_MAC, PT_MAC_LEN) != 0)
    return -1;
  if (raw[0] != version) return -1;
  if (filter_digest(k, filter, filter_len, want_digest) != 0 ||
      CRYPTO_memcmp(want_digest, raw + b + PT_OFF_DIGEST, PT_DIGEST_LEN) != 0)
    return -1;
  const unsigned char *id = raw + b + PT_OFF_ID;
  size_t id_len = 0;
  while (id_len < PAGE_CURSOR_ID_LEN && id[id_len]) id_len++;
  if (id_len == 0) return -1;
  for (size_t i = id_len; i < PAGE_CURSOR_ID_LEN; i++)
    if (id[i]) return -1;
  uint64_t us = 0;
  for (int i = 0; i < 8; i++) us = (us << 8) | raw[b + PT_OFF_US + i];
  memset(out, 0, sizeof(*out));
  out->created_us = (int64_t)us;
  memcpy(out->id, id, id_len);
  return 0;
}

int page_token_decode(const page_key *k, const char *token, size_t len, const char *filter,
                      size_t filter_len, page_cursor *out) {
  unsigned char raw[PT_RAW_LEN];
  if (!k || !out || unpack(token, len, PT_RAW_LEN, raw) != 0) return -1;
  return open_body(k, raw, 1, PT_VERSION, filter, filter_len, out);
}

/* ------------------------------------------------------------ key sets --- */

struct page_keyset {
  size_t n, signer;
  unsigned char (*tags)[PT_TAG_LEN];
  page_key **keys;
};

page_keyset *page_keyset_create(const page_keyset_entry *keys, size_t n, size_t signer) {
  if (!keys || n == 0 || signer >= n) return NULL;
  page_keyset *ks = calloc(1, sizeof *ks);
  if (!ks) return NULL;
  ks->signer = signer;
  if (!(ks->tags = calloc(n, sizeof *ks->tags)) || !(ks->keys = calloc(n, sizeof *ks->keys)))
    goto fail;
  for (size_t i = 0; i < n; i++) {
    unsigned char full[SHA256_DIGEST_LENGTH];
    ks->n = i + 1; /* what is made so far is freed by page_keyset_destroy */
    if (!keys[i].kid || EVP_Digest(keys[i].kid, keys[i].kid_len, full, NULL, EVP_sha256(),
                                   NULL) != 1 ||
        !(ks->keys[i] = page_key_create(keys[i].secret, keys[i].secret_len)))
      goto fail;
    memcpy(ks->tags[i], full, PT_TAG_LEN);
  }
  return ks;
fail:
  page_keyset_destroy(ks);
  return NULL;
}

void page_keyset_destroy(page_keyset *ks) {
  if (!ks) return;
  for (size_t i = 0; ks->keys && i < ks->n; i++) page_key_destroy(ks->keys[i]);
  free(ks->keys);
  free(ks->tags);
  free(ks);
}

int page_keyset_encode(const page_keyset *ks, const page_cursor *cur, const char *filter,
                       size_t filter_len, char *out, size_t outlen) {
  unsigned char raw[PT_TAGGED_RAW_LEN];
  if (!ks || !cur || !out || outlen < PT_TAGGED_TEXT_LEN + 1) return -1;
  memset(raw, 0, sizeof(raw));
  raw[0] = PT_TAGGED_VERSION;
  memcpy(raw + 1, ks->tags[ks->signer], PT_TAG_LEN);
  if (seal(ks->keys[ks->signer], raw, 1 + PT_TAG_LEN, cur, filter, filter_len) != 0) return -1;
  return b64url_encode(raw, PT_TAGGED_RAW_LEN, out, outlen, NULL);
}

int page_keyset_decode(const page_keyset *ks, const char *token, size_t len, const char *filter,
                       size_t filter_len, page_cursor *out) {
  unsigned char raw[PT_TAGGED_RAW_LEN];
  if (!ks || !out || unpack(token, len, PT_TAGGED_RAW_LEN, raw) != 0) return -1;
  /* Tags are not secret; only two kids whose SHA-256 share 8 bytes would
   * make more than one key match, and each such key is tried. */
  for (size_t i = 0; i < ks->n; i++)
    if (memcmp(ks->tags[i], raw + 1, PT_TAG_LEN) == 0 &&
        open_body(ks->keys[i], raw, 1 + PT_TAG_LEN, PT_TAGGED_VERSION, filter, filter_len,
                  out) == 0)
      return 0;
  return -1;
}
