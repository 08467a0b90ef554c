/* RFC 3339 formatting without time_t or gmtime: the civil date comes from
 * Howard Hinnant's days -> (y, m, d) algorithm, exact over the whole range. */
#include "core/timefmt.h"

#include <stdio.h>
#include <time.h>

/* google.protobuf.Timestamp's limits: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define TIMEFMT_MIN_SECONDS INT64_C(-62135596800)
#define TIMEFMT_MAX_SECONDS INT64_C(253402300799)

typedef struct civil {
  int64_t year;
  unsigned month, day, hour, minute, second;
} civil;

/* Days since 1970-01-01 -> proleptic Gregorian date (valid for any int64 day
 * count we can reach from the range checked by the callers). */
static void civil_from_days(int64_t z, civil *c) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);                      /* [0, 146096] */
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);          /* [0, 365] */
  const unsigned mp = (5 * doy + 2) / 153;                                /* [0, 11] */
  c->day = doy - (153 * mp + 2) / 5 + 1;
  c->month = mp < 10 ? mp + 3 : mp - 9;
  c->year = (int64_t)yoe + era * 400 + (c->month <= 2);
}

static void civil_from_seconds(int64_t s, civil *c) {
  int64_t days = s / 86400;
  int64_t rem = s % 86400;
  if (rem < 0) { /* floor, not truncation, for times before the epoch */
    rem += 86400;
    days -= 1;
  }
  civil_from_days(days, c);
  c->hour = (unsigned)(rem / 3600);
  c->minute = (unsigned)(rem % 3600 / 60);
  c->second = (unsigned)(rem % 60);
}

static int fail(char *buf, size_t n) {
  if (n > 0)
    buf[0] = '\0';
  return -1;
}

/* Writes the date-time, then `digits` digits of `frac` (0 = no fraction), then Z. */
static int format(int64_t seconds, uint32_t frac, int digits, char *buf, size_t n) {
  if (!buf || seconds < TIMEFMT_MIN_SECONDS || seconds > TIMEFMT_MAX_SECONDS)
    return fail(buf, n);
  civil c;
  civil_from_seconds(seconds, &c);
  int len;
  if (digits > 0)
    len = snprintf(buf, n, "%04d-%02u-%02uT%02u:%02u:%02u.%0*uZ", (int)c.year, c.month, c.day,
                   c.hour, c.minute, c.second, digits, frac);
  else
    len = snprintf(buf, n, "%04d-%02u-%02uT%02u:%02u:%02uZ", (int)c.year, c.month, c.day, c.hour,
                   c.minute, c.second);
  if (len < 0 || (size_t)len >= n)
    return fail(buf, n);
  return len;
}

int timefmt_rfc3339_us(int64_t us, char *buf, size_t n) {
  int64_t seconds = us / 1000000;
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    seconds -= 1;
  }
  return format(seconds, (uint32_t)frac, 6, buf, n);
}

int timefmt_rfc3339_ts(int64_t seconds, int32_t nanos, char *buf, size_t n) {
  if (nanos < 0 || nanos > 999999999)
    return fail(buf, n);
  uint32_t ns = (uint32_t)nanos;
  if (ns == 0)
    return format(seconds, 0, 0, buf, n);
  if (ns % 1000000 == 0)
    return format(seconds, ns / 1000000, 3, buf, n);
  if (ns % 1000 == 0)
    return format(seconds, ns / 1000, 6, buf, n);
  return format(seconds, ns, 9, buf, n);
}

int64_t timefmt_now_us(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return 0;
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
