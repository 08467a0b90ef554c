/* Values of the connection and memory limits: byte sizes with units, and the
 * default memory limit taken from the container's cgroup; see config.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "core/file_read.h"

/* Binary units only: Kubernetes writes "512Mi", people write "512M"; both
 * mean 2^20 here, so that a limit copied from a manifest means the same. */
static const struct {
  const char *suffix;
  int shift;
} k_units[] = {
    {"", 0},    {"b", 0},    {"k", 10},   {"ki", 10},  {"kib", 10}, {"m", 20},
    {"mi", 20}, {"mib", 20}, {"g", 30},   {"gi", 30},  {"gib", 30}, {"t", 40},
    {"ti", 40}, {"tib", 40},
};

int config_parse_bytes(const char *text, int64_t *out) {
  if (!text || text[0] < '0' || text[0] > '9') return -1;
  int64_t v = 0;
  const char *p = text;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (INT64_MAX - 9) / 10) return -1;
    v = v * 10 + (*p - '0');
  }
  for (size_t i = 0; i < sizeof k_units / sizeof k_units[0]; i++) {
    if (strcasecmp(p, k_units[i].suffix) != 0) continue;
    if (v > (INT64_MAX >> k_units[i].shift)) return -1;
    *out = v << k_units[i].shift;
    return 0;
  }
  return -1;
}

/* "max" (v2, no limit), a number, or a v1 "no limit" value (a page-rounded
 * LONG_MAX, anything above 2^60 in practice). */
static int64_t cgroup_value(const char *text) {
  if (!text) return 0;
  while (*text == ' ' || *text == '\t') text++;
  if (text[0] < '0' || text[0] > '9') return 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (v == 0 || v >= (1ULL << 60)) return 0;
  return (int64_t)v;
}

int64_t config_memory_limit_from_cgroup(const char *v2_max, const char *v1_limit, int percent) {
  int64_t lim = cgroup_value(v2_max);
  if (!lim) lim = cgroup_value(v1_limit);
  if (!lim) return 0;
  return lim / 100 * percent;
}

static int read_small(const char *path, char *buf, size_t n) {
  return file_read_head(path, "cgroup file", buf, n, NULL, NULL, 0);
}

int64_t config_memory_limit_default(void) {
  char v2[64], v1[64];
  const char *a = read_small("/sys/fs/cgroup/memory.max", v2, sizeof v2) == 0 ? v2 : NULL;
  const char *b =
      read_small("/sys/fs/cgroup/memory/memory.limit_in_bytes", v1, sizeof v1) == 0 ? v1 : NULL;
  return config_memory_limit_from_cgroup(a, b, CONFIG_MEMORY_LIMIT_PERCENT);
}

void config_resolve_memory_limit(config *c) {
  if (c->limits.memory_limit_bytes != CONFIG_MEMORY_LIMIT_AUTO) return;
  c->limits.memory_limit_bytes = config_memory_limit_default();
  c->limits.memory_limit_from_cgroup = c->limits.memory_limit_bytes > 0;
}

void config_describe_limits(const config *c, log_line *l) {
  const config_limits *k = &c->limits;
  log_line_int(l, "max_concurrent_streams", k->max_concurrent_streams);
  log_line_int(l, "stream_window_bytes", k->stream_window_bytes);
  log_line_int(l, "max_header_list_bytes", k->max_header_list_bytes);
  log_line_int(l, "handshake_timeout_ms", k->handshake_timeout_ms);
  log_line_int(l, "max_connection_idle_ms", k->max_connection_idle_ms);
  log_line_int(l, "max_connection_age_ms", k->max_connection_age_ms);
  log_line_int(l, "ping_min_interval_ms", k->ping_min_interval_ms);
  log_line_int(l, "max_ping_strikes", k->max_ping_strikes);
  log_line_int(l, "rapid_reset_per_s", k->rapid_reset_per_s);
  log_line_int(l, "h2_max_continuations", k->h2_continuations);
  log_line_int(l, "h2_ping_limit", k->h2_pings_per_s);
  log_line_int(l, "h2_settings_limit", k->h2_settings_per_s);
  log_line_int(l, "h2_empty_data_limit", k->h2_empty_data_per_s);
  log_line_int(l, "h2_rst_limit", k->h2_rst_per_s);
  log_line_int(l, "memory_limit_bytes", k->memory_limit_bytes);
  if (k->memory_limit_from_cgroup) log_line_str(l, "memory_limit_from", "cgroup");
}
