/* See b64url.h. */
#include "core/b64url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each character's value plus one; 0 marks a byte outside the alphabet. */
static const unsigned char value1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
    ['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
    ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
    ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
    ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
    ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
    ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63,
    ['_'] = 64,
};

static void to_url_alphabet(char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') s[i] = '-';
    else if (s[i] == '/') s[i] = '_';
  }
}

int b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_cap,
                  size_t *out_len) {
  size_t n = b64url_encoded_len(len);
  if (len > (size_t)1 << 28 || out_cap < n + 1) return -1;
  /* Whole groups straight into out (EVP_EncodeBlock adds a NUL, which fits:
   * 4 * groups <= n); the tail's padding goes to a scratch buffer. */
  size_t whole = len / 3 * 3;
  if (whole) EVP_EncodeBlock((unsigned char *)out, in, (int)whole);
  size_t at = whole / 3 * 4;
  if (len > whole) {
    unsigned char tail[5];
    EVP_EncodeBlock(tail, in + whole, (int)(len - whole));
    memcpy(out + at, tail, n - at);
  }
  to_url_alphabet(out, n);
  out[n] = '\0';
  if (out_len) *out_len = n;
  return 0;
}

bool b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_cap,
                   size_t *out_len) {
  size_t rem = len % 4;
  if (rem == 1) return false;
  size_t need = (len / 4) * 3 + (rem == 0 ? 0 : rem - 1);
  if (need > out_cap) return false;
  const unsigned char *p = (const unsigned char *)in;
  unsigned char valid = 1; /* stays 1 while every character is in the alphabet */
  size_t o = 0, i = 0;
  for (; i + 4 <= len; i += 4) {
    unsigned a = value1[p[i]], b = value1[p[i + 1]], c = value1[p[i + 2]], d = value1[p[i + 3]];
    valid &= (unsigned char)(a && b && c && d);
    uint32_t v = ((uint32_t)(a - 1) << 18) | ((uint32_t)(b - 1) << 12) |
                 ((uint32_t)(c - 1) << 6) | (uint32_t)(d - 1);
    out[o++] = (unsigned char)(v >> 16);
    out[o++] = (unsigned char)(v >> 8);
    out[o++] = (unsigned char)v;
  }
  if (rem == 2) {
    unsigned a = value1[p[i]], b = value1[p[i + 1]];
    if (!a || !b || ((b - 1) & 0x0f) != 0) return false;
    out[o++] = (unsigned char)(((a - 1) << 2) | ((b - 1) >> 4));
  } else if (rem == 3) {
    unsigned a = value1[p[i]], b = value1[p[i + 1]], c = value1[p[i + 2]];
    if (!a || !b || !c || ((c - 1) & 0x03) != 0) return false;
    out[o++] = (unsigned char)(((a - 1) << 2) | ((b - 1) >> 4));
    out[o++] = (unsigned char)((((b - 1) & 0x0f) << 4) | ((c - 1) >> 2));
  }
  if (!valid) return false;
  if (out_len) *out_len = o;
  return true;
}

bool b64url_is_canonical(const char *in, size_t len) {
  size_t rem = len % 4;
  if (rem == 1) return false;
  for (size_t i = 0; i < len; i++)
    if (!value1[(unsigned char)in[i]]) return false;
  if (len == 0) return true;
  unsigned last = value1[(unsigned char)in[len - 1]] - 1u;
  if (rem == 2) return (last & 0x0f) == 0;
  if (rem == 3) return (last & 0x03) == 0;
  return true;
}

void b64url_free(void *p, size_t n) {
  if (!p) return;
  OPENSSL_cleanse(p, n);
  free(p);
}

char *b64url_encode_alloc(const unsigned char *in, size_t len, size_t *out_len) {
  if (len > (size_t)1 << 28) return NULL;
  size_t cap = b64url_encoded_len(len) + 1;
  char *out = malloc(cap);
  if (!out) return NULL;
  if (b64url_encode(in, len, out, cap, out_len) != 0) {
    free(out);
    return NULL;
  }
  return out;
}

bool b64url_decode_alloc(const char *in, size_t len, unsigned char **out, size_t *out_len,
                         bool *oom) {
  *out = NULL;
  *out_len = 0;
  *oom = false;
  if (len == 0 || len % 4 == 1 || len > (size_t)1 << 28) return false;
  size_t cap = len / 4 * 3 + 2;
  unsigned char *dec = malloc(cap);
  if (!dec) {
    *oom = true;
    return false;
  }
  size_t n = 0;
  if (!b64url_decode(in, len, dec, cap, &n)) {
    b64url_free(dec, cap);
    return false;
  }
  *out = dec;
  *out_len = n;
  return true;
}
