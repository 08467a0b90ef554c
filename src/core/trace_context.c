/* W3C traceparent parsing, ids and samplers; see trace_context.h. */
#include "core/trace_context.h"

#include <openssl/rand.h>
#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1; /* uppercase is invalid in traceparent */
}

/* n bytes from 2n lowercase hex digits; -1 on any other character. */
static int unhex(const char *s, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

static bool all_zero(const uint8_t *b, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= b[i];
  return acc == 0;
}

/* version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 */
#define TP_LEN 55

int trace_parse_traceparent(const char *v, size_t len, uint8_t trace_id[TRACE_ID_LEN],
                            uint8_t parent_id[TRACE_SPAN_ID_LEN], uint8_t *flags) {
  uint8_t version, fl, tid[TRACE_ID_LEN], pid[TRACE_SPAN_ID_LEN];
  if (!v || len < TP_LEN) return -1;
  if (unhex(v, 1, &version) != 0 || version == 0xff) return -1;
  /* Version 00 is exactly 55 bytes. A later version may carry more fields,
   * after a '-'; its first four are read as version 00's (W3C 3.2.4). */
  if (version == 0 && len != TP_LEN) return -1;
  if (len > TP_LEN && v[TP_LEN] != '-') return -1;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return -1;
  if (unhex(v + 3, TRACE_ID_LEN, tid) != 0 || unhex(v + 36, TRACE_SPAN_ID_LEN, pid) != 0 ||
      unhex(v + 53, 1, &fl) != 0)
    return -1;
  if (all_zero(tid, sizeof tid) || all_zero(pid, sizeof pid)) return -1;
  memcpy(trace_id, tid, sizeof tid);
  memcpy(parent_id, pid, sizeof pid);
  *flags = fl;
  return 0;
}

bool trace_tracestate_ok(const char *v, size_t len) {
  if (!v || len == 0 || len > TRACE_TRACESTATE_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (ch < 0x20 || ch > 0x7e) return false;
  }
  return memchr(v, '=', len) != NULL;
}

/* A per-thread pool: RAND_bytes once per 4 KiB of ids (about 170 calls). */
#define POOL 4096
static _Thread_local uint8_t pool[POOL];
static _Thread_local size_t pool_left;

int trace_random_id(uint8_t *out, size_t n) {
  if (n == 0 || n > 64) return -1;
  for (int tries = 0; tries < 4; tries++) {
    if (pool_left < n) {
      if (RAND_bytes(pool, POOL) != 1) return -1;
      pool_left = POOL;
    }
    memcpy(out, pool + (POOL - pool_left), n);
    /* Used bytes are not left in memory to be read again later. */
    memset(pool + (POOL - pool_left), 0, n);
    pool_left -= n;
    if (!all_zero(out, n)) return 0;
  }
  return -1;
}

void trace_hex(const uint8_t *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
}

int trace_ctx_start(trace_ctx *t, const char *tp, size_t tp_len, const char *ts, size_t ts_len) {
  int rc = 0;
  uint8_t flags = 0;
  memset(t, 0, sizeof *t);
  if (tp && trace_parse_traceparent(tp, tp_len, t->trace_id, t->parent_id, &flags) == 0) {
    t->has_parent = true;
    t->parent_sampled = (flags & 1) != 0;
    if (ts && trace_tracestate_ok(ts, ts_len)) t->tracestate = ts;
  } else if (trace_random_id(t->trace_id, TRACE_ID_LEN) != 0) {
    memset(t->trace_id, 0xee, TRACE_ID_LEN);
    rc = -1;
  }
  if (trace_random_id(t->span_id, TRACE_SPAN_ID_LEN) != 0) {
    memset(t->span_id, 0xee, TRACE_SPAN_ID_LEN);
    rc = -1;
  }
  trace_hex(t->trace_id, TRACE_ID_LEN, t->trace_id_hex);
  trace_hex(t->span_id, TRACE_SPAN_ID_LEN, t->span_id_hex);
  return rc;
}

static const char *const sampler_names[] = {
    [TRACE_SAMPLER_PARENTBASED_ALWAYS_ON] = "parentbased_always_on",
    [TRACE_SAMPLER_ALWAYS_ON] = "always_on",
    [TRACE_SAMPLER_ALWAYS_OFF] = "always_off",
    [TRACE_SAMPLER_TRACEIDRATIO] = "traceidratio",
    [TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF] = "parentbased_always_off",
    [TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO] = "parentbased_traceidratio",
};

int trace_sampler_parse(const char *name, trace_sampler *out) {
  for (size_t i = 0; i < sizeof sampler_names / sizeof sampler_names[0]; i++) {
    if (name && strcmp(name, sampler_names[i]) == 0) {
      *out = (trace_sampler)i;
      return 0;
    }
  }
  return -1;
}

const char *trace_sampler_name(trace_sampler s) {
  return (unsigned)s < sizeof sampler_names / sizeof sampler_names[0] ? sampler_names[s] : "?";
}

/* TraceIdRatioBased as the OpenTelemetry SDKs do it: the trace id's last 8
 * bytes, as a 63-bit number, below ratio * 2^63. Deterministic per trace, so
 * every service with the same ratio keeps the same traces. */
static bool ratio_sample(double ratio, const trace_ctx *t) {
  if (ratio >= 1.0) return true;
  if (!(ratio > 0.0)) return false;
  uint64_t x = 0;
  for (int i = 8; i < 16; i++) x = x << 8 | t->trace_id[i];
  x &= UINT64_C(0x7fffffffffffffff);
  return (double)x < ratio * 9223372036854775808.0;
}

bool trace_should_sample(trace_sampler s, double ratio, const trace_ctx *t) {
  switch (s) {
  case TRACE_SAMPLER_ALWAYS_ON: return true;
  case TRACE_SAMPLER_ALWAYS_OFF: return false;
  case TRACE_SAMPLER_TRACEIDRATIO: return ratio_sample(ratio, t);
  case TRACE_SAMPLER_PARENTBASED_ALWAYS_ON: return t->has_parent ? t->parent_sampled : true;
  case TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF: return t->has_parent ? t->parent_sampled : false;
  case TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO:
    return t->has_parent ? t->parent_sampled : ratio_sample(ratio, t);
  }
  return false;
}
