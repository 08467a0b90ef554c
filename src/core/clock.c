/* See clock.h. */
#include "core/clock.h"

#define NS_PER_S 1000000000LL

static int64_t read_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t clock_mono_ns(void) { return read_ns(CLOCK_MONOTONIC); }

int64_t clock_mono_coarse_ns(void) { return read_ns(CLOCK_MONOTONIC_COARSE); }

int64_t clock_wall_us(void) { return read_ns(CLOCK_REALTIME) / 1000; }

void clock_mono_deadline(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  if (ms <= 0) return;
  int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
  ts->tv_sec += (time_t)(ms / 1000 + ns / NS_PER_S);
  ts->tv_nsec = (long)(ns % NS_PER_S);
}
