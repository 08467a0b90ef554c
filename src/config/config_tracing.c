/* The OpenTelemetry SDK's environment variables (and --otlp-endpoint) into
 * config_tracing; see config.h. Names and defaults are the SDK's
 * (opentelemetry-specification, "Environment Variable Specification"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static const char *env(config_getenv_fn getenv_fn, const char *name) {
  const char *v = getenv_fn(name);
  return v && v[0] ? v : NULL;
}

static int http_url(const char *u) {
  return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* base + "/v1/traces", as the SDK appends it to OTEL_EXPORTER_OTLP_ENDPOINT. */
static char *traces_url(const char *base) {
  size_t n = strlen(base);
  bool slash = n > 0 && base[n - 1] == '/';
  size_t len = n + sizeof "/v1/traces";
  char *out = malloc(len);
  if (out) snprintf(out, len, "%s%s", base, slash ? "v1/traces" : "/v1/traces");
  return out;
}

static int dup_opt(const char *v, char **out) {
  *out = NULL;
  if (!v) return 0;
  *out = strdup(v);
  return *out ? 0 : -1;
}

/* A positive integer variable in [1, max] (config_parse_uint's digits),
 * else def with a warning. */
static int64_t env_int(config_getenv_fn getenv_fn, const char *name, int64_t def, int64_t max,
                       config_tracing *out) {
  const char *v = env(getenv_fn, name);
  if (!v) return def;
  int64_t n = 0;
  if (config_parse_uint(v, max, &n) != 0 || n < 1) {
    snprintf(out->warning, sizeof out->warning, "%s: not a number in 1..%lld, using %lld", name,
             (long long)max, (long long)def);
    return def;
  }
  return n;
}

int config_resolve_tracing(const char *flag_url, config_getenv_fn getenv_fn, config_tracing *out,
                           char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->sampler = TRACE_SAMPLER_PARENTBASED_ALWAYS_ON;
  out->sampler_arg = 1.0;
  const char *signal = env(getenv_fn, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const char *base = env(getenv_fn, "OTEL_EXPORTER_OTLP_ENDPOINT");
  const char *origin = NULL;
  /* The command line wins; then the per-signal URL, used as is; then the
   * base URL with /v1/traces appended. */
  if (flag_url) {
    origin = "--otlp-endpoint";
    if (!flag_url[0] || !http_url(flag_url)) goto bad_url;
    out->otlp_url = traces_url(flag_url);
  } else if (signal) {
    origin = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    if (!http_url(signal)) goto bad_url;
    out->otlp_url = strdup(signal);
  } else if (base) {
    origin = "OTEL_EXPORTER_OTLP_ENDPOINT";
    if (!http_url(base)) goto bad_url;
    out->otlp_url = traces_url(base);
  }
  if (origin && !out->otlp_url) goto oom;

  const char *headers = env(getenv_fn, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  if (!headers) headers = env(getenv_fn, "OTEL_EXPORTER_OTLP_HEADERS");
  const char *name = env(getenv_fn, "OTEL_SERVICE_NAME");
  if (dup_opt(name ? name : "product-service", &out->service_name) ||
      dup_opt(env(getenv_fn, "OTEL_RESOURCE_ATTRIBUTES"), &out->resource_attributes) ||
      dup_opt(headers, &out->headers))
    goto oom;

  const char *sampler = env(getenv_fn, "OTEL_TRACES_SAMPLER");
  if (sampler && trace_sampler_parse(sampler, &out->sampler) != 0) {
    snprintf(out->warning, sizeof out->warning,
             "OTEL_TRACES_SAMPLER: unknown sampler, using parentbased_always_on");
    out->sampler = TRACE_SAMPLER_PARENTBASED_ALWAYS_ON;
  }
  const char *arg = env(getenv_fn, "OTEL_TRACES_SAMPLER_ARG");
  if (arg && (out->sampler == TRACE_SAMPLER_TRACEIDRATIO ||
              out->sampler == TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO)) {
    char *end = NULL;
    double r = strtod(arg, &end);
    if (end == arg || *end || !(r >= 0.0 && r <= 1.0))
      snprintf(out->warning, sizeof out->warning,
               "OTEL_TRACES_SAMPLER_ARG: not a ratio in [0, 1], using 1.0");
    else
      out->sampler_arg = r;
  }
  out->queue_size = env_int(getenv_fn, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1 << 20, out);
  out->batch_size = env_int(getenv_fn, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1 << 20, out);
  if (out->batch_size > out->queue_size) out->batch_size = out->queue_size;
  /* The contract sends at least every 5 s: a longer delay is capped. */
  out->schedule_delay_ms = env_int(getenv_fn, "OTEL_BSP_SCHEDULE_DELAY", 5000, 5000, out);
  const char *tv = env(getenv_fn, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                       ? "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
                       : "OTEL_EXPORTER_OTLP_TIMEOUT";
  out->export_timeout_ms = env_int(getenv_fn, tv, 10000, 600000, out);
  return 0;
bad_url:
  snprintf(err, errlen, "%s: an http:// or https:// URL is required", origin);
  config_tracing_free(out);
  return -1;
oom:
  snprintf(err, errlen, "out of memory");
  config_tracing_free(out);
  return -1;
}

void config_tracing_free(config_tracing *t) {
  free(t->otlp_url);
  free(t->service_name);
  free(t->resource_attributes);
  free(t->headers);
  t->otlp_url = t->service_name = t->resource_attributes = t->headers = NULL;
}
