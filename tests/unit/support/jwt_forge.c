/* Test-only token forging; see jwt_forge.h. */
#include "support/jwt_forge.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

size_t forge_b64url(const void *in, size_t len, char *out, size_t cap) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *p = in;
  size_t need = (len / 3) * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
  if (need + 1 > cap)
    return 0;
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned n = ((unsigned)p[i] << 16) | ((unsigned)p[i + 1] << 8) | p[i + 2];
    out[o++] = alphabet[(n >> 18) & 63];
    out[o++] = alphabet[(n >> 12) & 63];
    out[o++] = alphabet[(n >> 6) & 63];
    out[o++] = alphabet[n & 63];
  }
  if (len - i == 1) {
    unsigned n = (unsigned)p[i] << 16;
    out[o++] = alphabet[(n >> 18) & 63];
    out[o++] = alphabet[(n >> 12) & 63];
  } else if (len - i == 2) {
    unsigned n = ((unsigned)p[i] << 16) | ((unsigned)p[i + 1] << 8);
    out[o++] = alphabet[(n >> 18) & 63];
    out[o++] = alphabet[(n >> 12) & 63];
    out[o++] = alphabet[(n >> 6) & 63];
  }
  out[o] = '\0';
  return o;
}

size_t forge_token(char *out, size_t cap, const char *header_json, const char *payload_json,
                   const char *secret, const char *digest) {
  size_t h = forge_b64url(header_json, strlen(header_json), out, cap);
  if (h == 0 || h + 2 > cap)
    return 0;
  out[h] = '.';
  size_t p = forge_b64url(payload_json, strlen(payload_json), out + h + 1, cap - h - 1);
  if (p == 0 || h + 1 + p + 2 > cap)
    return 0;
  size_t signed_len = h + 1 + p;
  out[signed_len] = '.';
  out[signed_len + 1] = '\0';
  if (digest == NULL)
    return signed_len + 1;

  const EVP_MD *md = EVP_get_digestbyname(digest);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (md == NULL || HMAC(md, secret, (int)strlen(secret), (const unsigned char *)out, signed_len,
                         mac, &mac_len) == NULL)
    return 0;
  size_t s = forge_b64url(mac, mac_len, out + signed_len + 1, cap - signed_len - 1);
  if (s == 0)
    return 0;
  return signed_len + 1 + s;
}

size_t forge_hs256(char *out, size_t cap, const char *payload_json, const char *secret) {
  return forge_token(out, cap, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload_json, secret,
                     "SHA256");
}
