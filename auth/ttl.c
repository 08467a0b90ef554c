/* Token lifetimes. Strict on purpose: "1h " or "-5m" is a typo to report,
 * not something to guess at; zero is refused because a token born expired
 * is always a mistake. */
#include "auth/ttl.h"

#include <stddef.h>

int ttl_parse(const char *s, int64_t *out_seconds) {
  if (s == NULL || out_seconds == NULL)
    return -1;

  int64_t n = 0;
  size_t i = 0;
  for (; s[i] >= '0' && s[i] <= '9'; i++) {
    if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, s[i] - '0', &n))
      return -1;
  }
  if (i == 0)
    return -1; /* empty, a sign, whitespace or a unit without a number */

  int64_t unit;
  switch (s[i]) {
  case '\0':
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  default:
    return -1;
  }
  if (s[i] != '\0' && s[i + 1] != '\0')
    return -1; /* trailing bytes after the unit */

  int64_t seconds;
  if (__builtin_mul_overflow(n, unit, &seconds))
    return -1;
  if (seconds <= 0 || seconds > TTL_MAX_SECONDS)
    return -1;
  *out_seconds = seconds;
  return 0;
}
