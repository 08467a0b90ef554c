/* The rate-limit specs of --rate-limit and --auth-failure-limit, and their
 * part of the start-up line; see config.h. Every refusal names the part of
 * the spec it is about. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* Digits with at most one '.', nothing else (no sign, exponent, inf, nan,
 * spaces): what a person writes for a rate. */
static int parse_decimal(const char *s, size_t n, double *out) {
  char buf[32];
  bool digit = false, dot = false;
  if (n == 0 || n >= sizeof buf) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9') digit = true;
    else if (s[i] == '.' && !dot) dot = true;
    else return -1;
  }
  if (!digit) return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  *out = strtod(buf, NULL);
  return 0;
}

/* One "RATE/s[:BURST]" of n bytes; `part` names it in a refusal. */
static int parse_one(const char *s, size_t n, const char *part, config_rate *out, char *err,
                     size_t errlen) {
  const char *slash = memchr(s, '/', n);
  if (!slash) {
    snprintf(err, errlen, "'%s': want RATE/s[:BURST] (like 10/s or 0.5/s:5)", part);
    return -1;
  }
  double rate;
  if (slash > s && s[0] == '-' && parse_decimal(s + 1, (size_t)(slash - s) - 1, &rate) == 0) {
    snprintf(err, errlen, "'%s': the rate must be above 0 (use off to turn the limit off)", part);
    return -1;
  }
  if (parse_decimal(s, (size_t)(slash - s), &rate) != 0) {
    snprintf(err, errlen, "'%s': the rate '%.*s' is not a number", part, (int)(slash - s), s);
    return -1;
  }
  if (!(rate > 0)) {
    snprintf(err, errlen, "'%s': the rate must be above 0 (use off to turn the limit off)", part);
    return -1;
  }
  if (rate > CONFIG_RATE_MAX) {
    snprintf(err, errlen, "'%s': the rate must be at most %.0f/s", part, CONFIG_RATE_MAX);
    return -1;
  }
  const char *rest = slash + 1, *end = s + n;
  if (end - rest < 1 || rest[0] != 's' || (end - rest > 1 && rest[1] != ':')) {
    snprintf(err, errlen, "'%s': the rate is per second: want RATE/s[:BURST]", part);
    return -1;
  }
  double burst = rate < 1 ? 1 : rate;
  if (end - rest > 1) {
    const char *b = rest + 2;
    size_t bn = (size_t)(end - b);
    if (parse_decimal(b, bn, &burst) != 0 || memchr(b, '.', bn)) {
      snprintf(err, errlen, "'%s': the burst '%.*s' is not a whole number", part, (int)bn, b);
      return -1;
    }
    if (burst < 1 || burst > CONFIG_RATE_MAX) {
      snprintf(err, errlen, "'%s': the burst must be at least 1 (and at most %.0f)", part,
               CONFIG_RATE_MAX);
      return -1;
    }
  }
  out->rate = rate;
  out->burst = burst;
  return 0;
}

int config_parse_rate(const char *spec, config_rate *out, char *err, size_t errlen) {
  *out = (config_rate){0};
  if (!spec || !spec[0]) {
    snprintf(err, errlen, "empty: want RATE/s[:BURST] or off");
    return -1;
  }
  if (strcmp(spec, "off") == 0) return 0;
  if (strlen(spec) > 64) {
    snprintf(err, errlen, "too long: want RATE/s[:BURST] or off");
    return -1;
  }
  return parse_one(spec, strlen(spec), spec, out, err, errlen);
}

int config_parse_rate_limit(const char *spec, config_rate *read, config_rate *write, char *err,
                            size_t errlen) {
  *read = *write = (config_rate){0};
  if (!spec || !spec[0]) {
    snprintf(err, errlen, "empty: want read=RATE/s[:BURST],write=RATE/s[:BURST] or off");
    return -1;
  }
  if (strcmp(spec, "off") == 0) return 0;
  if (strlen(spec) > 200) {
    snprintf(err, errlen, "too long");
    return -1;
  }
  bool seen_read = false, seen_write = false;
  const char *p = spec;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    char part[208];
    snprintf(part, sizeof part, "%.*s", (int)n, p);
    if (n == 0) {
      snprintf(err, errlen, "an empty part: want read=RATE/s[:BURST],write=RATE/s[:BURST]");
      return -1;
    }
    const char *eq = memchr(p, '=', n);
    size_t cn = eq ? (size_t)(eq - p) : n;
    config_rate *dst;
    bool *seen;
    if (cn == 4 && strncmp(p, "read", 4) == 0) {
      dst = read;
      seen = &seen_read;
    } else if (cn == 5 && strncmp(p, "write", 5) == 0) {
      dst = write;
      seen = &seen_write;
    } else {
      snprintf(err, errlen, "'%s': unknown class '%.*s' (want read or write)", part, (int)cn, p);
      return -1;
    }
    if (!eq) {
      snprintf(err, errlen, "'%s': want %s=RATE/s[:BURST]", part, part);
      return -1;
    }
    if (*seen) {
      snprintf(err, errlen, "'%s': %.*s is given twice", part, (int)cn, p);
      return -1;
    }
    *seen = true;
    if (parse_one(eq + 1, n - cn - 1, part, dst, err, errlen) != 0) return -1;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

static void rate_text(const config_rate *r, char *out, size_t n) {
  if (r->rate <= 0) snprintf(out, n, "off");
  else snprintf(out, n, "%g/s:%g", r->rate, r->burst);
}

void config_describe_rate_limits(const config *c, log_line *l) {
  const config_rate_limits *k = &c->rate_limits;
  char a[64], b[64], text[160];
  rate_text(&k->read, a, sizeof a);
  rate_text(&k->write, b, sizeof b);
  if (k->read.rate <= 0 && k->write.rate <= 0) snprintf(text, sizeof text, "off");
  else if (k->write.rate <= 0) snprintf(text, sizeof text, "read=%s", a);
  else if (k->read.rate <= 0) snprintf(text, sizeof text, "write=%s", b);
  else snprintf(text, sizeof text, "read=%s,write=%s", a, b);
  log_line_str(l, "rate_limit", text);
  rate_text(&k->auth_failure, a, sizeof a);
  log_line_str(l, "auth_failure_limit", a);
  log_line_int(l, "rate_limit_keys", k->keys);
}
