/* See b64url.h. */
#include "core/b64url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

void b64url_free(void *p, size_t n) {
  if (!p) return;
  OPENSSL_cleanse(p, n);
  free(p);
}

static bool is_url_alpha(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

char *b64url_encode_alloc(const unsigned char *in, size_t len, size_t *out_len) {
  if (len > (size_t)1 << 28) return NULL;
  size_t cap = (len + 2) / 3 * 4 + 1;
  char *out = malloc(cap);
  if (!out) return NULL;
  int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
  if (n < 0) {
    free(out);
    return NULL;
  }
  size_t m = (size_t)n;
  while (m > 0 && out[m - 1] == '=') m--;
  for (size_t i = 0; i < m; i++) {
    if (out[i] == '+') out[i] = '-';
    else if (out[i] == '/') out[i] = '_';
  }
  out[m] = '\0';
  if (out_len) *out_len = m;
  return out;
}

bool b64url_decode_alloc(const char *in, size_t len, unsigned char **out, size_t *out_len,
                         bool *oom) {
  bool ok = false;
  unsigned char *std = NULL, *dec = NULL, *again = NULL;
  size_t pad = (4 - len % 4) % 4, std_len = len + pad, dec_cap = std_len / 4 * 3 + 1;
  *out = NULL;
  *out_len = 0;
  *oom = false;
  if (len == 0 || len % 4 == 1 || len > (size_t)1 << 28) return false;
  for (size_t i = 0; i < len; i++)
    if (!is_url_alpha((unsigned char)in[i])) return false;
  std = malloc(std_len + 1);
  dec = malloc(dec_cap);
  again = malloc(std_len + 1);
  if (!std || !dec || !again) {
    *oom = true;
    goto done;
  }
  for (size_t i = 0; i < len; i++)
    std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : (unsigned char)in[i];
  memset(std + len, '=', pad);
  int n = EVP_DecodeBlock(dec, std, (int)std_len);
  if (n < 0 || (size_t)n < pad) goto done;
  size_t dlen = (size_t)n - pad; /* EVP_DecodeBlock counts padding as zero bytes */
  /* Canonical form: leftover bits must be zero, i.e. re-encoding gives the
   * same text. */
  int e = EVP_EncodeBlock(again, dec, (int)dlen);
  if (e < 0 || (size_t)e != std_len || memcmp(again, std, std_len) != 0) goto done;
  *out = dec;
  *out_len = dlen;
  dec = NULL;
  ok = true;
done:
  b64url_free(std, std_len + 1);
  b64url_free(dec, dec_cap);
  b64url_free(again, std_len + 1);
  return ok;
}
