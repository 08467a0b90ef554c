#ifndef PRODUCT_CONFIG_CONFIG_H
#define PRODUCT_CONFIG_CONFIG_H
/* The server's configuration: every flag and environment variable of
 * product-server(8) parsed once, with getopt_long, into an immutable struct.
 * Nothing else in the server reads the environment. A flag wins over its
 * variable. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/secret.h"
#include "core/log.h"
#include "core/trace_context.h"

typedef struct config_addr {
  char host[256]; /* "0.0.0.0", "127.0.0.1", "::1" (no brackets), "localhost" */
  int port;       /* 0..65535; 0 picks a free port */
  char text[300]; /* "HOST:PORT" as grpc wants it ("[::1]:50051" for IPv6) */
  bool set;
} config_addr;

/* Per-connection HTTP/2 limits and the memory limit (docs/http2-limits.md).
 * 0 turns off the ones documented as optional. */
typedef struct config_limits {
  int64_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
  int64_t stream_window_bytes;    /* per-stream receive window; BDP probing off */
  int64_t max_header_list_bytes;  /* request metadata per call */
  int64_t handshake_timeout_ms;   /* TCP accept to HTTP/2 (and TLS) settled */
  int64_t max_connection_idle_ms; /* no call for that long: GOAWAY; 0 = never */
  int64_t max_connection_age_ms;  /* GOAWAY after that long; 0 = never */
  int64_t ping_min_interval_ms;   /* pings without data closer than this are strikes */
  int64_t max_ping_strikes;       /* strikes before GOAWAY ENHANCE_YOUR_CALM */
  int64_t rapid_reset_per_s;      /* client-cancelled calls per connection per second; 0 = off */
  int64_t h2_continuations;       /* CONTINUATION frames per header block; 0 = off */
  int64_t h2_pings_per_s;         /* PING frames per connection per second; 0 = off */
  int64_t h2_settings_per_s;      /* SETTINGS frames per connection per second; 0 = off */
  int64_t h2_empty_data_per_s;    /* empty DATA frames (CVE-2019-9518); 0 = off */
  int64_t h2_rst_per_s;           /* RST_STREAM frames per connection per second; 0 = off */
  int64_t memory_limit_bytes;     /* RSS above which new calls are shed; 0 = off */
  bool memory_limit_from_cgroup;
} config_limits;

/* memory_limit_bytes until config_resolve_memory_limit runs: "auto". */
#define CONFIG_MEMORY_LIMIT_AUTO (-1)
/* The automatic limit: this share of the cgroup's, leaving the rest for the
 * calls admitted before shedding starts and for the allocator's slack. */
#define CONFIG_MEMORY_LIMIT_PERCENT 85

/* One token bucket: rate per second (0: the limit is off) and capacity. */
typedef struct config_rate {
  double rate;
  double burst;
} config_rate;

/* --rate-limit, --auth-failure-limit and --rate-limit-keys
 * (config_rate_limit.c). */
typedef struct config_rate_limits {
  config_rate read;         /* GetProduct, ListProducts, per caller */
  config_rate write;        /* CreateProduct, UpdateProduct, DeleteProduct */
  config_rate auth_failure; /* failed authentications per client address */
  int64_t keys;             /* callers tracked at once */
} config_rate_limits;

#define CONFIG_RATE_MAX 1e9 /* per second; above, a limit means nothing */
/* Tracing, from the OpenTelemetry SDK's variables (config_tracing.c). */
typedef struct config_tracing {
  char *otlp_url;            /* the full POST URL; NULL: spans are not exported */
  char *service_name;        /* OTEL_SERVICE_NAME, default "product-service" */
  char *resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES, or NULL */
  char *headers;             /* OTEL_EXPORTER_OTLP_HEADERS (TRACES_ variant first), or NULL */
  trace_sampler sampler;     /* OTEL_TRACES_SAMPLER */
  double sampler_arg;        /* OTEL_TRACES_SAMPLER_ARG for the ratio samplers, 1.0 */
  int64_t queue_size;        /* OTEL_BSP_MAX_QUEUE_SIZE, 2048 */
  int64_t batch_size;        /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512 (<= queue_size) */
  int64_t schedule_delay_ms; /* OTEL_BSP_SCHEDULE_DELAY, 5000 (at most: the contract's 5 s) */
  int64_t export_timeout_ms; /* OTEL_EXPORTER_OTLP_TRACES_TIMEOUT / _TIMEOUT, 10000 */
  char warning[200];         /* an ignored value, as the SDK ignores it: logged at start */
} config_tracing;

typedef struct config {
  config_addr listen;
  char *tls_cert;      /* NULL when not given */
  char *tls_key;
  char *tls_client_ca;
  bool insecure;
  secret jwt_secret;   /* >= 32 bytes after a successful parse, unless jwt_keys_file */
  char *jwt_keys_file; /* a JWK Set (auth/jwks.h); exclusive with the secret */
  char *jwt_revocations_file; /* optional revocation list (auth/revocations.h) */
  char *jwt_issuer;
  char *jwt_audience;
  int64_t jwt_leeway_s;
  char *store_spec;
  log_format log_format;
  char *ready_file;
  config_addr health_listen;
  config_addr metrics_listen;
  char **etcd_endpoints; /* NULL-terminated; NULL when not given */
  size_t n_etcd_endpoints;
  config_addr advertise;
  int threads;          /* worker threads; 0 = derive from the CPU affinity mask */
  int64_t drain_ms;     /* graceful shutdown limit (10 s) */
  bool h2_guard_off;    /* --h2-guard=off: serve without the HTTP/2 guard */
  bool tls13_only;      /* --tls-min-version=1.3: TLS 1.2 clients are refused */
  config_limits limits;
  config_rate_limits rate_limits;
  config_tracing tracing;
} config;

typedef enum config_result {
  CONFIG_OK = 0,
  CONFIG_EXIT_SUCCESS, /* --help or --version was printed: exit 0 */
  CONFIG_ERROR,        /* err holds one line: exit 2 */
} config_result;

/* Environment lookup, so that tests need not touch the process environment. */
typedef const char *(*config_getenv_fn)(const char *name);

/* Parses argv and the environment. On CONFIG_OK *out owns everything. Help
 * and version go to `out_stream` (stdout in the server). */
config_result config_parse(int argc, char **argv, config_getenv_fn getenv_fn, void *out_stream,
                           config **out, char *err, size_t errlen);
void config_destroy(config *c); /* wipes the secret */

/* Parses "HOST:PORT", "[v6]:PORT", or a bare "PORT"; non-zero on a bad value. */
int config_parse_addr(const char *text, config_addr *out, char *err, size_t errlen);

/* Parses a comma-separated etcd endpoint list ("http://h:2379,https://h2:2379"
 * or "h:2379"; spaces around commas allowed). Each entry is normalised to
 * "http://HOST:PORT" or "https://HOST:PORT" ("[v6]" bracketed). *out is
 * NULL-terminated and owned by the caller (free each string, then the
 * array). Non-zero with one line in err on a bad list. */
int config_parse_etcd_endpoints(const char *list, char ***out, size_t *n, char *err,
                                size_t errlen);

/* Copies a store spec into out with any PostgreSQL password (URI user info or
 * a password= parameter) replaced by "<redacted>"; the result is truncated to
 * fit. Safe for logs and error messages. */
void config_redact_store_spec(const char *spec, char *out, size_t outlen);

/* Decimal digits only (no sign, no spaces, not empty), value <= max (max
 * below INT64_MAX / 10): 0 and *out, non-zero otherwise. */
int config_parse_uint(const char *s, int64_t max, int64_t *out);

/* "1048576", "64Ki", "512Mi", "2G" (binary units, case-insensitive) into
 * bytes; non-zero on anything else or an overflow. */
int config_parse_bytes(const char *text, int64_t *out);

/* The default memory limit from the text of cgroup v2's memory.max or v1's
 * memory.limit_in_bytes (either NULL): percent of the limit, or 0 when there
 * is none ("max", unlimited, unreadable). */
int64_t config_memory_limit_from_cgroup(const char *v2_max, const char *v1_limit, int percent);
/* The same from this process's /sys/fs/cgroup. */
int64_t config_memory_limit_default(void);
/* Turns an "auto" memory limit into the cgroup-derived one (or 0). */
void config_resolve_memory_limit(config *c);
/* Appends the limits to the start-up line. */
void config_describe_limits(const config *c, log_line *l);

/* "read=RATE/s[:BURST],write=RATE/s[:BURST]" (either may be left out) or
 * "off" into read and write (rate 0: off). Non-zero with one line in err
 * naming the part that is wrong. */
int config_parse_rate_limit(const char *spec, config_rate *read, config_rate *write, char *err,
                            size_t errlen);
/* "RATE/s[:BURST]" or "off". RATE: a decimal number above 0 (fractions
 * allowed); BURST: a whole number >= 1, by default RATE (at least 1). */
int config_parse_rate(const char *spec, config_rate *out, char *err, size_t errlen);
/* Appends the rate limits to the start-up line. */
void config_describe_rate_limits(const config *c, log_line *l);
/* The tracing settings: the --otlp-endpoint flag's value (or NULL) and the
 * OTEL_* variables. Non-zero with one line in err on a URL that is not
 * http(s). An unknown sampler or a bad ratio is ignored with a warning, as
 * the OpenTelemetry SDK specifies. */
int config_resolve_tracing(const char *flag_url, config_getenv_fn getenv_fn, config_tracing *out,
                           char *err, size_t errlen);
void config_tracing_free(config_tracing *t);

/* Appends the effective configuration to a log line (the start-up line): the
 * secret appears only as "<redacted, N bytes>", a database password never. */
void config_describe(const config *c, log_line *l);

#endif
