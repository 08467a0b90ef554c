#ifndef PRODUCT_CORE_TIMEFMT_H
#define PRODUCT_CORE_TIMEFMT_H
/* RFC 3339 UTC timestamps, as the logs and the client's JSON print them.
 * Pure arithmetic on the proleptic Gregorian calendar (no time_t, no TZ, no
 * locale), so any thread may call these and the result never depends on the
 * host. Years are limited to 0001..9999, google.protobuf.Timestamp's range. */
#include <stddef.h>
#include <stdint.h>

/* "9999-12-31T23:59:59.999999999Z" and its NUL. */
#define TIMEFMT_RFC3339_MAX 31

/* Microseconds since the Unix epoch -> "2026-11-25T07:00:00.123456Z" (always
 * six fraction digits, so log lines line up). Returns the length written (27)
 * with buf NUL-terminated, or -1 (buf set to "" when n > 0) when n is too
 * small or the time is outside years 1..9999. */
int timefmt_rfc3339_us(int64_t us, char *buf, size_t n);

/* A google.protobuf.Timestamp -> its protobuf JSON form: 0, 3, 6 or 9 fraction
 * digits, the fewest that hold nanos exactly ("...:00Z", "...:00.120Z",
 * "...:00.123456Z", "...:00.123456789Z"). Returns the length written, or -1
 * as above, also when nanos is outside 0..999999999. */
int timefmt_rfc3339_ts(int64_t seconds, int32_t nanos, char *buf, size_t n);

/* The wall clock in microseconds since the epoch (CLOCK_REALTIME). */
int64_t timefmt_now_us(void);

#endif
