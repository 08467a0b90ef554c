/* The `authorization` value: credentials = auth-scheme 1*SP token68
 * (RFC 9110 section 11.4, RFC 6750 section 2.1). We accept one or more
 * spaces or tabs as the separator, nothing else, and no whitespace or
 * control byte around or inside the token; checking that the token is a
 * JWT is jwt_verify's job. */
#include "auth/bearer.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

const char *bearer_result_reason(bearer_result r) {
  switch (r) {
  case BEARER_OK:
    return "ok";
  case BEARER_MISSING:
    return "no_token";
  case BEARER_DUPLICATE:
    return "duplicate_authorization";
  case BEARER_BAD_SCHEME:
    return "bad_scheme";
  case BEARER_MALFORMED:
    return "malformed";
  }
  return "malformed";
}

static bool is_blank(unsigned char c) { return c == ' ' || c == '\t'; }

/* RFC 9110 tchar: the bytes an auth-scheme word is made of. */
static bool is_tchar(unsigned char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
    return true;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
  case '.': case '^': case '_': case '`': case '|': case '~':
    return true;
  default:
    return false;
  }
}

/* Whether any of the 8 bytes in w is outside 0x21..0x7e (SWAR: for n <=
 * 128, (w - n*ONES) & ~w & HIGHS marks the bytes below n; for n <= 127,
 * ((w + (127-n)*ONES) | w) & HIGHS the bytes above n; both exact). The
 * token is checked 8 bytes at a time: it is scanned twice per call (here
 * for the rate limiter, then for auth), and byte by byte that was some
 * 2,000 instructions for a 300-byte token. */
static bool word_has_non_token_byte(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t below = (w - ones * 0x21) & ~w & highs;
  uint64_t above = ((w + ones * (127 - 0x7e)) | w) & highs;
  return (below | above) != 0;
}

bearer_result bearer_parse(unsigned count, const char *value, size_t len, const char **token,
                           size_t *token_len) {
  if (token != NULL)
    *token = NULL;
  if (token_len != NULL)
    *token_len = 0;
  if (count == 0)
    return BEARER_MISSING;
  if (count > 1)
    return BEARER_DUPLICATE;
  if (value == NULL || len == 0)
    return BEARER_MALFORMED;

  const unsigned char *p = (const unsigned char *)value;
  size_t i = 0;
  while (i < len && is_tchar(p[i]))
    i++;
  if (i == 0)
    return BEARER_MALFORMED; /* leading whitespace or a separator first */
  if (!(i == 6 && strncasecmp(value, "bearer", 6) == 0))
    return BEARER_BAD_SCHEME;
  if (i == len || !is_blank(p[i]))
    return BEARER_MALFORMED; /* "Bearer", "Bearer:x", "Bearer\n..." */
  while (i < len && is_blank(p[i]))
    i++;

  size_t start = i;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, sizeof w);
    if (word_has_non_token_byte(w))
      return BEARER_MALFORMED; /* whitespace, control, NUL or non-ASCII */
  }
  for (; i < len; i++) {
    if (p[i] <= 0x20 || p[i] >= 0x7f)
      return BEARER_MALFORMED; /* whitespace, control, NUL or non-ASCII */
  }
  if (start == len)
    return BEARER_MALFORMED;

  if (token != NULL)
    *token = value + start;
  if (token_len != NULL)
    *token_len = len - start;
  return BEARER_OK;
}
