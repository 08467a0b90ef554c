/* ListProducts page tokens; see page_token.h.
 *
 * Layout (77 bytes, then base64url without padding: 103 characters):
 *   [0]      version (1)
 *   [1..9)   created_us, big-endian two's complement
 *   [9..45)  id, NUL-padded to PRODUCT_ID_LEN
 *   [45..61) first 16 bytes of SHA-256(filter text)
 *   [61..77) first 16 bytes of HMAC-SHA256(key, bytes [0..61))
 * key = HMAC-SHA256(server secret, "product-service page-token v1"): a key of
 * its own, so a token MAC can never be confused with a JWT signature.
 * Decoding accepts only the exact canonical encoding, so no two strings
 * decode to the same token. */
#include "store/page_token.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define PT_VERSION 1
#define PT_KEY_LABEL "product-service page-token v1"
#define PT_DIGEST_LEN 16
#define PT_MAC_LEN 16
#define PT_OFF_US 1
#define PT_OFF_ID (PT_OFF_US + 8)
#define PT_OFF_DIGEST (PT_OFF_ID + PRODUCT_ID_LEN)
#define PT_OFF_MAC (PT_OFF_DIGEST + PT_DIGEST_LEN)
#define PT_RAW_LEN (PT_OFF_MAC + PT_MAC_LEN)
#define PT_TEXT_LEN ((PT_RAW_LEN * 4 + 2) / 3) /* unpadded base64 */
#define PT_STD_LEN (((PT_RAW_LEN + 2) / 3) * 4) /* padded, as OpenSSL writes it */

_Static_assert(PT_TEXT_LEN < PAGE_TOKEN_MAX, "a page token must fit PAGE_TOKEN_MAX");

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

static int mac(const page_key *k, const unsigned char *raw, unsigned char out[PT_MAC_LEN]) {
  unsigned char full[SHA256_DIGEST_LENGTH];
  size_t n = 0;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->mac_template);
  int ok = ctx && EVP_MAC_update(ctx, raw, PT_OFF_MAC) == 1 &&
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

/* base64url without padding of raw into out (PT_TEXT_LEN + 1 bytes). */
static void encode_raw(const unsigned char raw[PT_RAW_LEN], char out[PT_TEXT_LEN + 1]) {
  unsigned char std[PT_STD_LEN + 1];
  EVP_EncodeBlock(std, raw, PT_RAW_LEN);
  for (size_t i = 0; i < PT_TEXT_LEN; i++) {
    char c = (char)std[i];
    out[i] = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  out[PT_TEXT_LEN] = '\0';
}

int page_token_encode(const page_key *k, const store_cursor *cur, const char *filter,
                      size_t filter_len, char *out, size_t outlen) {
  unsigned char raw[PT_RAW_LEN];
  if (!k || !cur || !out || outlen < PT_TEXT_LEN + 1) return -1;
  size_t id_len = strnlen(cur->id, sizeof(cur->id));
  if (id_len == 0 || id_len > PRODUCT_ID_LEN) return -1;
  memset(raw, 0, sizeof(raw));
  raw[0] = PT_VERSION;
  uint64_t us = (uint64_t)cur->created_us;
  for (int i = 0; i < 8; i++) raw[PT_OFF_US + i] = (unsigned char)(us >> (56 - 8 * i));
  memcpy(raw + PT_OFF_ID, cur->id, id_len);
  if (filter_digest(k, filter, filter_len, raw + PT_OFF_DIGEST) != 0 ||
      mac(k, raw, raw + PT_OFF_MAC) != 0)
    return -1;
  encode_raw(raw, out);
  return 0;
}

static bool is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int page_token_decode(const page_key *k, const char *token, size_t len, const char *filter,
                      size_t filter_len, store_cursor *out) {
  unsigned char std[PT_STD_LEN + 1], raw[PT_STD_LEN];
  unsigned char want_mac[PT_MAC_LEN], want_digest[PT_DIGEST_LEN];
  char again[PT_TEXT_LEN + 1];
  if (!k || !token || !out || len != PT_TEXT_LEN) return -1;
  for (size_t i = 0; i < PT_TEXT_LEN; i++) {
    if (!is_b64url(token[i])) return -1;
    std[i] = token[i] == '-' ? '+' : token[i] == '_' ? '/' : (unsigned char)token[i];
  }
  for (size_t i = PT_TEXT_LEN; i < PT_STD_LEN; i++) std[i] = '=';
  std[PT_STD_LEN] = '\0';
  /* OpenSSL counts padding as data: 26 groups decode to 78 bytes. */
  if (EVP_DecodeBlock(raw, std, PT_STD_LEN) != (PT_STD_LEN / 4) * 3) return -1;
  /* Unused low bits in the last character must be zero (canonical form). */
  encode_raw(raw, again);
  if (memcmp(again, token, PT_TEXT_LEN) != 0) return -1;
  if (mac(k, raw, want_mac) != 0 || CRYPTO_memcmp(want_mac, raw + PT_OFF_MAC, PT_MAC_LEN) != 0)
    return -1;
  if (raw[0] != PT_VERSION) return -1;
  if (filter_digest(k, filter, filter_len, want_digest) != 0 ||
      CRYPTO_memcmp(want_digest, raw + PT_OFF_DIGEST, PT_DIGEST_LEN) != 0)
    return -1;
  const unsigned char *id = raw + PT_OFF_ID;
  size_t id_len = 0;
  while (id_len < PRODUCT_ID_LEN && id[id_len]) id_len++;
  if (id_len == 0) return -1;
  for (size_t i = id_len; i < PRODUCT_ID_LEN; i++)
    if (id[i]) return -1;
  uint64_t us = 0;
  for (int i = 0; i < 8; i++) us = (us << 8) | raw[PT_OFF_US + i];
  memset(out, 0, sizeof(*out));
  out->created_us = (int64_t)us;
  memcpy(out->id, id, id_len);
  return 0;
}
