/* Flags and environment into an immutable config; see config.h.
 *
 * Parsing runs in two steps: getopt_long collects the raw flag values, then
 * every setting is resolved (flag, else its variable, else the default) and
 * checked. An empty variable counts as unset, so a Kubernetes manifest can
 * leave one blank; an empty flag value is an error. Every refusal is one line
 * in err that names the flag or variable it came from. */
#include "config/config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

#ifndef PRODUCT_VERSION
#define PRODUCT_VERSION "0.0.0"
#endif
#ifndef PRODUCT_GRPC_CORE_VERSION
#define PRODUCT_GRPC_CORE_VERSION "unknown"
#endif

#define CONFIG_DEFAULT_LISTEN "0.0.0.0:50051"
#define CONFIG_DEFAULT_ISSUER "product-service"
#define CONFIG_DEFAULT_AUDIENCE "client"
#define CONFIG_DEFAULT_LEEWAY "30"
#define CONFIG_DEFAULT_STORE "sqlite:./data/products.db"
#define CONFIG_DEFAULT_DRAIN_MS 10000
#define CONFIG_MAX_LEEWAY_S 86400 /* a day of clock skew is already absurd */
#define CONFIG_MAX_THREADS 1024

enum opt_code {
  OPT_LISTEN = 256,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_CLIENT_CA,
  OPT_TLS_MIN_VERSION,
  OPT_INSECURE,
  OPT_JWT_SECRET_FILE,
  OPT_JWT_KEYS,
  OPT_JWT_REVOCATIONS,
  OPT_JWT_ISSUER,
  OPT_JWT_AUDIENCE,
  OPT_JWT_LEEWAY,
  OPT_STORE,
  OPT_LOG_FORMAT,
  OPT_READY_FILE,
  OPT_HEALTH_LISTEN,
  OPT_METRICS_LISTEN,
  OPT_ETCD_ENDPOINTS,
  OPT_ADVERTISE_ADDR,
  OPT_THREADS,
  OPT_MAX_STREAMS,
  OPT_STREAM_WINDOW,
  OPT_MAX_HEADER_LIST,
  OPT_HANDSHAKE_TIMEOUT,
  OPT_IDLE_TIMEOUT,
  OPT_MAX_AGE,
  OPT_PING_INTERVAL,
  OPT_PING_STRIKES,
  OPT_RAPID_RESET,
  OPT_H2_CONTINUATIONS,
  OPT_H2_PINGS,
  OPT_H2_SETTINGS,
  OPT_H2_EMPTY_DATA,
  OPT_H2_RST,
  OPT_MEMORY_LIMIT,
  OPT_H2_GUARD,
  OPT_RATE_LIMIT,
  OPT_AUTH_FAILURE_LIMIT,
  OPT_RATE_LIMIT_KEYS,
  OPT_OTLP_ENDPOINT,
  OPT_END,
};
#define OPT_COUNT (OPT_END - OPT_LISTEN)

/* The flag table drives getopt_long, the help text and the error messages. */
typedef struct opt_info {
  int code;
  const char *flag; /* without the leading "--" */
  const char *arg;  /* NULL: no value */
  const char *env;
  const char *def;
  const char *help;
} opt_info;

static const opt_info k_opts[] = {
    {OPT_LISTEN, "listen", "HOST:PORT", "LISTEN_ADDR", CONFIG_DEFAULT_LISTEN,
     "address to serve on (PORT=N alone means 0.0.0.0:N; port 0 picks a free port)"},
    {OPT_TLS_CERT, "tls-cert", "PATH", "TLS_CERT_FILE", NULL, "PEM server certificate chain"},
    {OPT_TLS_KEY, "tls-key", "PATH", "TLS_KEY_FILE", NULL, "PEM private key"},
    {OPT_TLS_CLIENT_CA, "tls-client-ca", "PATH", "TLS_CLIENT_CA_FILE", NULL,
     "require client certificates signed by this CA (mutual TLS)"},
    {OPT_TLS_MIN_VERSION, "tls-min-version", "1.2|1.3", "TLS_MIN_VERSION", "1.2",
     "oldest TLS version accepted (1.3: refuse TLS 1.2 clients)"},
    {OPT_INSECURE, "insecure", NULL, "INSECURE=1", NULL, "serve plaintext (no TLS)"},
    {OPT_JWT_SECRET_FILE, "jwt-secret-file", "PATH", "JWT_SECRET_FILE", NULL,
     "file holding the HS256 secret (JWT_SECRET holds the secret itself)"},
    {OPT_JWT_KEYS, "jwt-keys", "PATH", "JWT_KEYS_FILE", NULL,
     "JWK Set of HS256 keys, reloaded on change (instead of a secret)"},
    {OPT_JWT_REVOCATIONS, "jwt-revocations", "PATH", "JWT_REVOCATIONS_FILE", NULL,
     "revoked tokens (jti VALUE / sub VALUE BEFORE), reloaded on change"},
    {OPT_JWT_ISSUER, "jwt-issuer", "S", "JWT_ISSUER", CONFIG_DEFAULT_ISSUER, "required iss"},
    {OPT_JWT_AUDIENCE, "jwt-audience", "S", "JWT_AUDIENCE", CONFIG_DEFAULT_AUDIENCE,
     "required aud"},
    {OPT_JWT_LEEWAY, "jwt-leeway", "SECONDS", "JWT_LEEWAY", CONFIG_DEFAULT_LEEWAY,
     "clock skew allowed on exp, nbf, iat"},
    {OPT_STORE, "store", "SPEC", "STORE", CONFIG_DEFAULT_STORE,
     "memory, sqlite:PATH or postgres://..."},
    {OPT_LOG_FORMAT, "log-format", "json|text", "LOG_FORMAT", "json", "log line format"},
    {OPT_READY_FILE, "ready-file", "PATH", "READY_FILE", NULL,
     "write the bound HOST:PORT there once serving"},
    {OPT_HEALTH_LISTEN, "health-listen", "HOST:PORT", "HEALTH_LISTEN_ADDR", NULL,
     "also serve grpc.health.v1.Health in plaintext here"},
    {OPT_METRICS_LISTEN, "metrics-listen", "HOST:PORT", "METRICS_LISTEN_ADDR", NULL,
     "serve GET /metrics (Prometheus) in plaintext HTTP here"},
    {OPT_ETCD_ENDPOINTS, "etcd-endpoints", "URL[,URL]", "ETCD_ENDPOINTS", NULL,
     "register in etcd"},
    {OPT_ADVERTISE_ADDR, "advertise-addr", "HOST:PORT", "ADVERTISE_ADDR", "the bound address",
     "the address registered in etcd"},
    {OPT_THREADS, "threads", "N", "WORKER_THREADS", "0 (auto)", "worker threads"},
    {OPT_MAX_STREAMS, "max-concurrent-streams", "N", "MAX_CONCURRENT_STREAMS", "100",
     "HTTP/2 streams open at once per connection"},
    {OPT_STREAM_WINDOW, "stream-window", "BYTES", "STREAM_WINDOW_BYTES", "64Ki",
     "HTTP/2 receive window per stream"},
    {OPT_MAX_HEADER_LIST, "max-header-list-size", "BYTES", "MAX_HEADER_LIST_BYTES", "256Ki",
     "request metadata per call; over it the connection is refused the call"},
    {OPT_HANDSHAKE_TIMEOUT, "handshake-timeout-ms", "MS", "HANDSHAKE_TIMEOUT_MS", "10000",
     "time a new connection has to finish TLS and the HTTP/2 preface"},
    {OPT_IDLE_TIMEOUT, "max-connection-idle-ms", "MS", "MAX_CONNECTION_IDLE_MS", "300000",
     "GOAWAY to a connection without calls for that long (0: never)"},
    {OPT_MAX_AGE, "max-connection-age-ms", "MS", "MAX_CONNECTION_AGE_MS", "0 (never)",
     "GOAWAY to a connection that old (0: never)"},
    {OPT_PING_INTERVAL, "ping-min-interval-ms", "MS", "PING_MIN_INTERVAL_MS", "300000",
     "client PINGs without data closer than this are strikes"},
    {OPT_PING_STRIKES, "max-ping-strikes", "N", "MAX_PING_STRIKES", "2",
     "strikes before GOAWAY ENHANCE_YOUR_CALM (0: no limit)"},
    {OPT_RAPID_RESET, "rapid-reset-limit", "N", "RAPID_RESET_LIMIT", "200",
     "client-cancelled calls per connection per second before it is closed (0: off)"},
    {OPT_H2_CONTINUATIONS, "h2-max-continuations", "N", "H2_MAX_CONTINUATIONS", "128",
     "CONTINUATION frames in one header block before the connection is closed (0: off)"},
    {OPT_H2_PINGS, "h2-ping-limit", "N", "H2_PING_LIMIT", "1000",
     "PING frames per connection per second before it is closed (0: off)"},
    {OPT_H2_SETTINGS, "h2-settings-limit", "N", "H2_SETTINGS_LIMIT", "100",
     "SETTINGS frames per connection per second before it is closed (0: off)"},
    {OPT_H2_EMPTY_DATA, "h2-empty-data-limit", "N", "H2_EMPTY_DATA_LIMIT", "1000",
     "empty DATA frames per connection per second before it is closed (0: off)"},
    {OPT_H2_RST, "h2-rst-limit", "N", "H2_RST_LIMIT", "1000",
     "RST_STREAM frames per connection per second before it is closed (0: off)"},
    {OPT_MEMORY_LIMIT, "memory-limit", "BYTES|auto", "MEMORY_LIMIT",
     "auto (85% of the cgroup limit, else off)",
     "above this RSS new calls get RESOURCE_EXHAUSTED (0: off)"},
    {OPT_H2_GUARD, "h2-guard", "on|off", "H2_GUARD", "on",
     "off serves without the HTTP/2 guard (no rapid-reset or frame limits; logged)"},
    {OPT_RATE_LIMIT, "rate-limit", "SPEC", "RATE_LIMIT", "off",
     "calls per caller: read=RATE/s[:BURST],write=RATE/s[:BURST], or off"},
    {OPT_AUTH_FAILURE_LIMIT, "auth-failure-limit", "SPEC", "AUTH_FAILURE_LIMIT", "10/s:100",
     "failed authentications per client address: RATE/s[:BURST], or off"},
    {OPT_RATE_LIMIT_KEYS, "rate-limit-keys", "N", "RATE_LIMIT_KEYS", "100000",
     "callers tracked at once; the least recently seen is forgotten first"},
    {OPT_OTLP_ENDPOINT, "otlp-endpoint", "URL", "OTEL_EXPORTER_OTLP_ENDPOINT", NULL,
     "export spans (OTLP http/protobuf) to URL/v1/traces; OTEL_* variables apply"},
};

/* The numeric limits: flag, field, accepted range and default. */
typedef struct limit_info {
  int code;
  size_t offset; /* in config_limits */
  int64_t min, max, def;
  bool bytes; /* units allowed (64Ki, 1Mi) */
} limit_info;

#define LIMIT_FIELD(f) offsetof(config_limits, f)
static const limit_info k_limits[] = {
    {OPT_MAX_STREAMS, LIMIT_FIELD(max_concurrent_streams), 1, 1 << 20, 100, false},
    /* HTTP/2 allows 2^31-1; below 1 KiB no useful message fits. */
    {OPT_STREAM_WINDOW, LIMIT_FIELD(stream_window_bytes), 1024, INT32_MAX, 64 << 10, true},
    /* Above the core's 8 KiB default, so an oversized authorization value
     * reaches the auth interceptor (UNAUTHENTICATED) instead of the transport
     * failing the call with RESOURCE_EXHAUSTED. */
    {OPT_MAX_HEADER_LIST, LIMIT_FIELD(max_header_list_bytes), 1024, 16 << 20, 256 << 10, true},
    {OPT_HANDSHAKE_TIMEOUT, LIMIT_FIELD(handshake_timeout_ms), 1, INT32_MAX, 10000, false},
    {OPT_IDLE_TIMEOUT, LIMIT_FIELD(max_connection_idle_ms), 0, INT32_MAX, 300000, false},
    {OPT_MAX_AGE, LIMIT_FIELD(max_connection_age_ms), 0, INT32_MAX, 0, false},
    {OPT_PING_INTERVAL, LIMIT_FIELD(ping_min_interval_ms), 0, INT32_MAX, 300000, false},
    {OPT_PING_STRIKES, LIMIT_FIELD(max_ping_strikes), 0, 1000, 2, false},
    {OPT_RAPID_RESET, LIMIT_FIELD(rapid_reset_per_s), 0, 1 << 24, 200, false},
    {OPT_H2_CONTINUATIONS, LIMIT_FIELD(h2_continuations), 0, 1 << 24, 128, false},
    /* grpc-go and grpc-java clients send a BDP PING per round trip while
     * data flows: hundreds a second on a fast link. A flood sends 10^5. */
    {OPT_H2_PINGS, LIMIT_FIELD(h2_pings_per_s), 0, 1 << 24, 1000, false},
    {OPT_H2_SETTINGS, LIMIT_FIELD(h2_settings_per_s), 0, 1 << 24, 100, false},
    {OPT_H2_EMPTY_DATA, LIMIT_FIELD(h2_empty_data_per_s), 0, 1 << 24, 1000, false},
    {OPT_H2_RST, LIMIT_FIELD(h2_rst_per_s), 0, 1 << 24, 1000, false},
    {OPT_MEMORY_LIMIT, LIMIT_FIELD(memory_limit_bytes), 0, INT64_MAX, CONFIG_MEMORY_LIMIT_AUTO,
     true},
};

static const struct option k_long[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"tls-min-version", required_argument, NULL, OPT_TLS_MIN_VERSION},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"jwt-secret-file", required_argument, NULL, OPT_JWT_SECRET_FILE},
    {"jwt-keys", required_argument, NULL, OPT_JWT_KEYS},
    {"jwt-revocations", required_argument, NULL, OPT_JWT_REVOCATIONS},
    {"jwt-issuer", required_argument, NULL, OPT_JWT_ISSUER},
    {"jwt-audience", required_argument, NULL, OPT_JWT_AUDIENCE},
    {"jwt-leeway", required_argument, NULL, OPT_JWT_LEEWAY},
    {"store", required_argument, NULL, OPT_STORE},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"health-listen", required_argument, NULL, OPT_HEALTH_LISTEN},
    {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
    {"etcd-endpoints", required_argument, NULL, OPT_ETCD_ENDPOINTS},
    {"advertise-addr", required_argument, NULL, OPT_ADVERTISE_ADDR},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-concurrent-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"stream-window", required_argument, NULL, OPT_STREAM_WINDOW},
    {"max-header-list-size", required_argument, NULL, OPT_MAX_HEADER_LIST},
    {"handshake-timeout-ms", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"max-connection-idle-ms", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"max-connection-age-ms", required_argument, NULL, OPT_MAX_AGE},
    {"ping-min-interval-ms", required_argument, NULL, OPT_PING_INTERVAL},
    {"max-ping-strikes", required_argument, NULL, OPT_PING_STRIKES},
    {"rapid-reset-limit", required_argument, NULL, OPT_RAPID_RESET},
    {"h2-max-continuations", required_argument, NULL, OPT_H2_CONTINUATIONS},
    {"h2-ping-limit", required_argument, NULL, OPT_H2_PINGS},
    {"h2-settings-limit", required_argument, NULL, OPT_H2_SETTINGS},
    {"h2-empty-data-limit", required_argument, NULL, OPT_H2_EMPTY_DATA},
    {"h2-rst-limit", required_argument, NULL, OPT_H2_RST},
    {"memory-limit", required_argument, NULL, OPT_MEMORY_LIMIT},
    {"h2-guard", required_argument, NULL, OPT_H2_GUARD},
    {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
    {"auth-failure-limit", required_argument, NULL, OPT_AUTH_FAILURE_LIMIT},
    {"rate-limit-keys", required_argument, NULL, OPT_RATE_LIMIT_KEYS},
    {"otlp-endpoint", required_argument, NULL, OPT_OTLP_ENDPOINT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* A resolved raw value and where it came from ("--listen" or "LISTEN_ADDR"). */
typedef struct setting {
  const char *value; /* NULL: neither flag nor variable */
  char origin[40];
} setting;

typedef struct parse_state {
  const char *flags[OPT_COUNT];
  bool insecure_flag;
  config_getenv_fn getenv_fn;
} parse_state;

static const char *process_getenv(const char *name) { return getenv(name); }

static const opt_info *opt_by_code(int code) {
  for (size_t i = 0; i < sizeof k_opts / sizeof k_opts[0]; i++)
    if (k_opts[i].code == code) return &k_opts[i];
  return NULL;
}

/* Copies a user-given value for an error message: at most 64 bytes, control
 * characters replaced, so the message stays one line. */
static const char *shown(const char *v, char *buf, size_t n) {
  size_t i = 0;
  for (; v[i] && i + 1 < n && i < 64; i++) {
    unsigned char ch = (unsigned char)v[i];
    buf[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  buf[i] = '\0';
  return buf;
}

/* The flag's value, else the variable's (when not empty), else NULL. */
static setting resolve(const parse_state *ps, int code, const char *env_name) {
  setting s = {0};
  const char *fv = ps->flags[code - OPT_LISTEN];
  if (fv) {
    s.value = fv;
    snprintf(s.origin, sizeof s.origin, "--%s", opt_by_code(code)->flag);
    return s;
  }
  const char *ev = env_name ? ps->getenv_fn(env_name) : NULL;
  if (ev && ev[0]) {
    s.value = ev;
    snprintf(s.origin, sizeof s.origin, "%s", env_name);
  }
  return s;
}

static int dup_setting(const setting *s, char **out, char *err, size_t errlen) {
  *out = NULL;
  if (!s->value) return 0;
  *out = strdup(s->value);
  if (!*out) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

static void print_usage(FILE *f) {
  fprintf(f,
          "Usage: product-server [OPTIONS]\n"
          "\n"
          "Serves product.ProductService, grpc.health.v1.Health and server reflection.\n"
          "Every option has an environment variable; the option wins when both are given.\n"
          "\n");
  for (size_t i = 0; i < sizeof k_opts / sizeof k_opts[0]; i++) {
    const opt_info *o = &k_opts[i];
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", o->flag, o->arg ? " " : "", o->arg ? o->arg : "");
    fprintf(f, "  %-30s %s\n", left, o->help);
    fprintf(f, "  %-30s env %s%s%s\n", "", o->env, o->def ? "; default " : "",
            o->def ? o->def : "");
  }
  fprintf(f, "  %-30s %s\n", "(no option)", "the HS256 secret itself");
  fprintf(f, "  %-30s env JWT_SECRET (used when no secret file is given)\n", "");
  fprintf(f, "  %-30s %s\n", "(tracing)", "the OpenTelemetry SDK's variables, read once:");
  fprintf(f, "  %-30s env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the URL as is)\n", "");
  fprintf(f, "  %-30s env OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS\n", "");
  fprintf(f, "  %-30s env OTEL_SERVICE_NAME; default product-service\n", "");
  fprintf(f, "  %-30s env OTEL_RESOURCE_ATTRIBUTES\n", "");
  fprintf(f, "  %-30s env OTEL_TRACES_SAMPLER; default parentbased_always_on\n", "");
  fprintf(f, "  %-30s env OTEL_TRACES_SAMPLER_ARG; default 1.0\n", "");
  fprintf(f, "  %-30s env OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512)\n", "");
  fprintf(f, "  %-30s env OTEL_BSP_SCHEDULE_DELAY (5000 ms, at most)\n", "");
  fprintf(f, "  %-30s env OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT (10000 ms)\n", "");
  fprintf(f, "  %-30s %s\n", "-h, --help", "print this help and exit");
  fprintf(f, "  %-30s %s\n", "-V, --version", "print the version and exit");
  fprintf(f,
          "\n"
          "A JWT secret of at least %d bytes or a key set (--jwt-keys, not both) is\n"
          "required, and either --tls-cert with --tls-key or --insecure. Exit status 2\n"
          "on a bad option or value.\n",
          SECRET_MIN_LEN);
}

/* Runs getopt_long over argv into ps. Returns CONFIG_OK to go on. */
static config_result collect_flags(int argc, char **argv, parse_state *ps, FILE *out,
                                   char *err, size_t errlen) {
  char buf[80];
  if (argc < 1 || !argv) return CONFIG_OK;
  /* GNU getopt re-initialises at optind 0, so tests may parse many times. */
  optind = 0;
  opterr = 0;
  for (;;) {
    int idx = -1;
    int ch = getopt_long(argc, argv, "+:hV", k_long, &idx);
    if (ch == -1) break;
    const char *text = (optind > 0 && optind <= argc) ? argv[optind - 1] : "";
    switch (ch) {
      case 'h':
        print_usage(out);
        fflush(out);
        return CONFIG_EXIT_SUCCESS;
      case 'V':
        fprintf(out, "product-server %s (grpc core %s)\n", PRODUCT_VERSION,
                PRODUCT_GRPC_CORE_VERSION);
        fflush(out);
        return CONFIG_EXIT_SUCCESS;
      case OPT_INSECURE:
        ps->insecure_flag = true;
        break;
      case ':': {
        const opt_info *o = opt_by_code(optopt);
        if (o)
          snprintf(err, errlen, "option --%s needs a value (%s)", o->flag, o->arg);
        else
          snprintf(err, errlen, "option '%s' needs a value", shown(text, buf, sizeof buf));
        return CONFIG_ERROR;
      }
      case '?': {
        const opt_info *o = opt_by_code(optopt);
        if (o)
          snprintf(err, errlen, "option --%s takes no value", o->flag);
        else if (optopt > 0 && optopt < 256)
          snprintf(err, errlen, "unknown option '-%c' (see --help)", (char)optopt);
        else
          snprintf(err, errlen, "unknown option '%s' (see --help)", shown(text, buf, sizeof buf));
        return CONFIG_ERROR;
      }
      default:
        if (ch < OPT_LISTEN || ch >= OPT_END) {
          snprintf(err, errlen, "unknown option '%s' (see --help)", shown(text, buf, sizeof buf));
          return CONFIG_ERROR;
        }
        if (!optarg || !optarg[0]) {
          snprintf(err, errlen, "option --%s needs a non-empty value", opt_by_code(ch)->flag);
          return CONFIG_ERROR;
        }
        ps->flags[ch - OPT_LISTEN] = optarg; /* the last one given wins */
        break;
    }
  }
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument '%s' (the server takes only options)",
             shown(argv[optind], buf, sizeof buf));
    return CONFIG_ERROR;
  }
  return CONFIG_OK;
}

static int resolve_addr(const parse_state *ps, int code, const char *env, config_addr *out,
                        char *err, size_t errlen) {
  setting s = resolve(ps, code, env);
  if (!s.value) return 0;
  char why[160];
  if (config_parse_addr(s.value, out, why, sizeof why) != 0) {
    snprintf(err, errlen, "bad %s: %s", s.origin, why);
    return -1;
  }
  return 0;
}

static int resolve_listen(const parse_state *ps, config *c, char *err, size_t errlen) {
  setting s = resolve(ps, OPT_LISTEN, "LISTEN_ADDR");
  char why[160];
  char buf[80];
  if (s.value) {
    if (config_parse_addr(s.value, &c->listen, why, sizeof why) != 0) {
      snprintf(err, errlen, "bad %s: %s", s.origin, why);
      return -1;
    }
    return 0;
  }
  /* PORT=N alone (Cloud Run, Heroku style) means every interface. */
  const char *port = ps->getenv_fn("PORT");
  if (port && port[0]) {
    int64_t p;
    if (config_parse_uint(port, 65535, &p) != 0) {
      snprintf(err, errlen, "bad PORT '%s': want a port number 0..65535",
               shown(port, buf, sizeof buf));
      return -1;
    }
    char text[32];
    snprintf(text, sizeof text, "0.0.0.0:%d", (int)p);
    return config_parse_addr(text, &c->listen, err, errlen);
  }
  return config_parse_addr(CONFIG_DEFAULT_LISTEN, &c->listen, err, errlen);
}

static int resolve_insecure(const parse_state *ps, config *c, char *err, size_t errlen) {
  if (ps->insecure_flag) {
    c->insecure = true;
    return 0;
  }
  const char *v = ps->getenv_fn("INSECURE");
  if (!v || !v[0] || strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 ||
      strcasecmp(v, "no") == 0) {
    c->insecure = false;
    return 0;
  }
  if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) {
    c->insecure = true;
    return 0;
  }
  char buf[80];
  snprintf(err, errlen, "bad INSECURE '%s': want 1, true, yes, or 0, false, no",
           shown(v, buf, sizeof buf));
  return -1;
}

static int resolve_strings(const parse_state *ps, config *c, char *err, size_t errlen) {
  setting s;
  s = resolve(ps, OPT_TLS_CERT, "TLS_CERT_FILE");
  if (dup_setting(&s, &c->tls_cert, err, errlen)) return -1;
  s = resolve(ps, OPT_TLS_KEY, "TLS_KEY_FILE");
  if (dup_setting(&s, &c->tls_key, err, errlen)) return -1;
  s = resolve(ps, OPT_TLS_CLIENT_CA, "TLS_CLIENT_CA_FILE");
  if (dup_setting(&s, &c->tls_client_ca, err, errlen)) return -1;
  s = resolve(ps, OPT_READY_FILE, "READY_FILE");
  if (dup_setting(&s, &c->ready_file, err, errlen)) return -1;
  s = resolve(ps, OPT_JWT_KEYS, "JWT_KEYS_FILE");
  if (dup_setting(&s, &c->jwt_keys_file, err, errlen)) return -1;
  s = resolve(ps, OPT_JWT_REVOCATIONS, "JWT_REVOCATIONS_FILE");
  if (dup_setting(&s, &c->jwt_revocations_file, err, errlen)) return -1;

  s = resolve(ps, OPT_JWT_ISSUER, "JWT_ISSUER");
  if (!s.value) s.value = CONFIG_DEFAULT_ISSUER;
  if (dup_setting(&s, &c->jwt_issuer, err, errlen)) return -1;
  s = resolve(ps, OPT_JWT_AUDIENCE, "JWT_AUDIENCE");
  if (!s.value) s.value = CONFIG_DEFAULT_AUDIENCE;
  if (dup_setting(&s, &c->jwt_audience, err, errlen)) return -1;
  return 0;
}

static int resolve_numbers(const parse_state *ps, config *c, char *err, size_t errlen) {
  char buf[80];
  int64_t v;
  setting s = resolve(ps, OPT_JWT_LEEWAY, "JWT_LEEWAY");
  if (s.value) {
    if (config_parse_uint(s.value, CONFIG_MAX_LEEWAY_S, &v) != 0) {
      snprintf(err, errlen, "bad %s '%s': want whole seconds 0..%d", s.origin,
               shown(s.value, buf, sizeof buf), CONFIG_MAX_LEEWAY_S);
      return -1;
    }
    c->jwt_leeway_s = v;
  } else {
    c->jwt_leeway_s = 30;
  }
  s = resolve(ps, OPT_THREADS, "WORKER_THREADS");
  c->threads = 0;
  if (s.value) {
    if (config_parse_uint(s.value, CONFIG_MAX_THREADS, &v) != 0) {
      snprintf(err, errlen, "bad %s '%s': want 0 (auto) .. %d", s.origin,
               shown(s.value, buf, sizeof buf), CONFIG_MAX_THREADS);
      return -1;
    }
    c->threads = (int)v;
  }
  c->drain_ms = CONFIG_DEFAULT_DRAIN_MS;
  return 0;
}

static int resolve_limits(const parse_state *ps, config *c, char *err, size_t errlen) {
  char buf[80];
  for (size_t i = 0; i < sizeof k_limits / sizeof k_limits[0]; i++) {
    const limit_info *li = &k_limits[i];
    const opt_info *o = opt_by_code(li->code);
    int64_t *field = (int64_t *)((char *)&c->limits + li->offset);
    *field = li->def;
    setting s = resolve(ps, li->code, o->env);
    if (!s.value) continue;
    if (li->code == OPT_MEMORY_LIMIT && strcasecmp(s.value, "auto") == 0) continue;
    int64_t v;
    int rc = li->bytes ? config_parse_bytes(s.value, &v) : config_parse_uint(s.value, li->max, &v);
    if (rc != 0 || v < li->min || v > li->max) {
      snprintf(err, errlen, "bad %s '%s': want %s %lld..%lld%s", s.origin,
               shown(s.value, buf, sizeof buf), li->bytes ? "bytes" : "a whole number",
               (long long)li->min, (long long)li->max,
               li->code == OPT_MEMORY_LIMIT ? " (units Ki, Mi, Gi allowed), or auto"
               : li->bytes                  ? " (units Ki, Mi allowed)"
                                            : "");
      return -1;
    }
    *field = v;
  }
  return 0;
}

#define CONFIG_DEFAULT_AUTH_FAILURE_LIMIT "10/s:100"
#define CONFIG_DEFAULT_RATE_LIMIT_KEYS 100000
#define CONFIG_MAX_RATE_LIMIT_KEYS 100000000

static int resolve_rate_limits(const parse_state *ps, config *c, char *err, size_t errlen) {
  char buf[80], why[200];
  config_rate_limits *k = &c->rate_limits;
  setting s = resolve(ps, OPT_RATE_LIMIT, "RATE_LIMIT");
  if (s.value && config_parse_rate_limit(s.value, &k->read, &k->write, why, sizeof why) != 0) {
    snprintf(err, errlen, "bad %s: %s", s.origin, why);
    return -1;
  }
  s = resolve(ps, OPT_AUTH_FAILURE_LIMIT, "AUTH_FAILURE_LIMIT");
  if (config_parse_rate(s.value ? s.value : CONFIG_DEFAULT_AUTH_FAILURE_LIMIT, &k->auth_failure,
                        why, sizeof why) != 0) {
    snprintf(err, errlen, "bad %s: %s", s.origin, why);
    return -1;
  }
  s = resolve(ps, OPT_RATE_LIMIT_KEYS, "RATE_LIMIT_KEYS");
  k->keys = CONFIG_DEFAULT_RATE_LIMIT_KEYS;
  if (s.value) {
    int64_t v;
    if (config_parse_uint(s.value, CONFIG_MAX_RATE_LIMIT_KEYS, &v) != 0 || v < 1) {
      snprintf(err, errlen, "bad %s '%s': want a whole number 1..%d", s.origin,
               shown(s.value, buf, sizeof buf), CONFIG_MAX_RATE_LIMIT_KEYS);
      return -1;
    }
    k->keys = v;
  }
  return 0;
}

static int resolve_log_format(const parse_state *ps, config *c, char *err, size_t errlen) {
  char buf[80];
  setting s = resolve(ps, OPT_LOG_FORMAT, "LOG_FORMAT");
  c->log_format = LOG_FORMAT_JSON;
  if (!s.value || strcasecmp(s.value, "json") == 0) return 0;
  if (strcasecmp(s.value, "text") == 0) {
    c->log_format = LOG_FORMAT_TEXT;
    return 0;
  }
  snprintf(err, errlen, "bad %s '%s': want json or text", s.origin,
           shown(s.value, buf, sizeof buf));
  return -1;
}

/* A setting with two values: unset or `dflt` leaves *other false, `alt`
 * sets it; anything else is refused naming both. Case-insensitive. */
static int resolve_two(const parse_state *ps, int opt, const char *env, const char *dflt,
                       const char *alt, bool *other, char *err, size_t errlen) {
  char buf[80];
  setting s = resolve(ps, opt, env);
  *other = false;
  if (!s.value || strcasecmp(s.value, dflt) == 0) return 0;
  if (strcasecmp(s.value, alt) == 0) {
    *other = true;
    return 0;
  }
  snprintf(err, errlen, "bad %s '%s': want %s or %s", s.origin, shown(s.value, buf, sizeof buf),
           dflt, alt);
  return -1;
}

static int resolve_tls_min_version(const parse_state *ps, config *c, char *err, size_t errlen) {
  return resolve_two(ps, OPT_TLS_MIN_VERSION, "TLS_MIN_VERSION", "1.2", "1.3", &c->tls13_only,
                     err, errlen);
}

static int resolve_h2_guard(const parse_state *ps, config *c, char *err, size_t errlen) {
  return resolve_two(ps, OPT_H2_GUARD, "H2_GUARD", "on", "off", &c->h2_guard_off, err, errlen);
}

static int resolve_store(const parse_state *ps, config *c, char *err, size_t errlen) {
  setting s = resolve(ps, OPT_STORE, "STORE");
  if (!s.value) {
    s.value = CONFIG_DEFAULT_STORE;
    snprintf(s.origin, sizeof s.origin, "--store");
  }
  /* The store module never copies a password into its message. */
  char why[256];
  why[0] = '\0';
  if (store_spec_check(s.value, why, sizeof why) != 0) {
    const char *w = why[0] ? why : "malformed store spec";
    if (strncmp(w, "store: ", 7) == 0) w += 7; /* our prefix says it already */
    snprintf(err, errlen, "bad %s: %s", s.origin, w);
    return -1;
  }
  return dup_setting(&s, &c->store_spec, err, errlen);
}

static int resolve_etcd(const parse_state *ps, config *c, char *err, size_t errlen) {
  setting s = resolve(ps, OPT_ETCD_ENDPOINTS, "ETCD_ENDPOINTS");
  if (!s.value) return 0;
  char why[200];
  if (config_parse_etcd_endpoints(s.value, &c->etcd_endpoints, &c->n_etcd_endpoints, why,
                                  sizeof why) != 0) {
    snprintf(err, errlen, "bad %s: %s", s.origin, why);
    return -1;
  }
  return 0;
}

/* The secret comes from --jwt-secret-file, else JWT_SECRET_FILE, else
 * JWT_SECRET; its bytes are never put into a message. */
static int resolve_secret(const parse_state *ps, config *c, char *err, size_t errlen) {
  char why[200];
  why[0] = '\0';
  setting s = resolve(ps, OPT_JWT_SECRET_FILE, "JWT_SECRET_FILE");
  if (c->jwt_keys_file) {
    /* A key set replaces the secret; both is a mistake whatever the source
     * (the key set is loaded and checked by auth/keyring.c at start). */
    const char *v = ps->getenv_fn("JWT_SECRET");
    if (s.value || (v && v[0])) {
      snprintf(err, errlen, "--jwt-keys (JWT_KEYS_FILE) and %s both given: choose one",
               s.value ? s.origin : "JWT_SECRET");
      return -1;
    }
    return 0;
  }
  if (s.value) {
    if (secret_load_file(s.value, &c->jwt_secret, why, sizeof why) != 0) {
      snprintf(err, errlen, "%s: %s", s.origin, why[0] ? why : "cannot read the secret file");
      return -1;
    }
  } else {
    const char *v = ps->getenv_fn("JWT_SECRET");
    if (!v || !v[0]) {
      snprintf(err, errlen,
               "no JWT secret: set --jwt-secret-file, JWT_SECRET_FILE or JWT_SECRET, or --jwt-keys");
      return -1;
    }
    if (secret_from_value(v, &c->jwt_secret, why, sizeof why) != 0) {
      snprintf(err, errlen, "JWT_SECRET: %s", why[0] ? why : "unusable secret");
      return -1;
    }
  }
  if (secret_check(&c->jwt_secret, why, sizeof why) != 0) {
    snprintf(err, errlen, "the JWT secret from %s is %zu bytes; at least %d are required",
             s.value ? s.origin : "JWT_SECRET", c->jwt_secret.len, SECRET_MIN_LEN);
    return -1;
  }
  return 0;
}

/* Only the combination rules: whether the files load is the TLS module's job,
 * so that its messages can be precise. */
/* Plaintext and TLS both asked for: as for any setting, what the command
 * line says wins over the environment (an operator's --insecure beats a
 * TLS_CERT_FILE in the environment, and --tls-cert beats INSECURE=1). Only
 * when both come from the same place is it a contradiction. */
static void settle_insecure_vs_tls(const parse_state *ps, config *c) {
  if (!(c->tls_cert && c->insecure)) return;
  bool cert_flag = ps->flags[OPT_TLS_CERT - OPT_LISTEN] != NULL;
  if (ps->insecure_flag && !cert_flag) {
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_client_ca);
    c->tls_cert = c->tls_key = c->tls_client_ca = NULL;
  } else if (cert_flag && !ps->insecure_flag) {
    c->insecure = false;
  }
}

static int check_tls(const config *c, char *err, size_t errlen) {
  if (c->tls_cert && !c->tls_key) {
    snprintf(err, errlen, "--tls-cert (TLS_CERT_FILE) needs --tls-key (TLS_KEY_FILE)");
    return -1;
  }
  if (c->tls_key && !c->tls_cert) {
    snprintf(err, errlen, "--tls-key (TLS_KEY_FILE) needs --tls-cert (TLS_CERT_FILE)");
    return -1;
  }
  if (c->tls_client_ca && !c->tls_cert) {
    snprintf(err, errlen,
             "--tls-client-ca (TLS_CLIENT_CA_FILE) needs --tls-cert and --tls-key");
    return -1;
  }
  if (c->tls_cert && c->insecure) {
    snprintf(err, errlen,
             "--insecure (INSECURE) and --tls-cert (TLS_CERT_FILE) both given: choose one");
    return -1;
  }
  if (!c->tls_cert && !c->insecure) {
    snprintf(err, errlen,
             "no TLS certificate: give --tls-cert and --tls-key, or --insecure for plaintext");
    return -1;
  }
  return 0;
}

config_result config_parse(int argc, char **argv, config_getenv_fn getenv_fn, void *out_stream,
                           config **out, char *err, size_t errlen) {
  config_result rc = CONFIG_ERROR;
  FILE *f = out_stream ? (FILE *)out_stream : stdout;
  parse_state ps = {.getenv_fn = getenv_fn ? getenv_fn : process_getenv};
  config *c = NULL;
  if (out) *out = NULL;
  if (err && errlen) err[0] = '\0';
  if (!out || !err || errlen == 0) return CONFIG_ERROR;

  rc = collect_flags(argc, argv, &ps, f, err, errlen);
  if (rc != CONFIG_OK) goto cleanup;
  rc = CONFIG_ERROR;

  c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    goto cleanup;
  }
  /* Syntax of every value first, then the secret, then the combinations, so
   * a typo is reported as such and not as a missing secret. */
  if (resolve_listen(&ps, c, err, errlen) ||
      resolve_addr(&ps, OPT_HEALTH_LISTEN, "HEALTH_LISTEN_ADDR", &c->health_listen, err,
                   errlen) ||
      resolve_addr(&ps, OPT_METRICS_LISTEN, "METRICS_LISTEN_ADDR", &c->metrics_listen, err,
                   errlen) ||
      resolve_addr(&ps, OPT_ADVERTISE_ADDR, "ADVERTISE_ADDR", &c->advertise, err, errlen) ||
      resolve_insecure(&ps, c, err, errlen) || resolve_strings(&ps, c, err, errlen) ||
      resolve_numbers(&ps, c, err, errlen) || resolve_limits(&ps, c, err, errlen) ||
      resolve_rate_limits(&ps, c, err, errlen) ||
      resolve_log_format(&ps, c, err, errlen) || resolve_h2_guard(&ps, c, err, errlen) ||
      resolve_tls_min_version(&ps, c, err, errlen) ||
      resolve_store(&ps, c, err, errlen) || resolve_etcd(&ps, c, err, errlen) ||
      resolve_secret(&ps, c, err, errlen) ||
      config_resolve_tracing(ps.flags[OPT_OTLP_ENDPOINT - OPT_LISTEN], ps.getenv_fn, &c->tracing,
                             err, errlen))
    goto cleanup;
  settle_insecure_vs_tls(&ps, c);
  if (check_tls(c, err, errlen)) goto cleanup;

  *out = c;
  c = NULL;
  rc = CONFIG_OK;
cleanup:
  config_destroy(c);
  return rc;
}

void config_destroy(config *c) {
  if (!c) return;
  if (c->jwt_secret.bytes) secret_wipe(&c->jwt_secret);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->tls_client_ca);
  free(c->jwt_keys_file);
  free(c->jwt_revocations_file);
  free(c->jwt_issuer);
  free(c->jwt_audience);
  free(c->store_spec);
  free(c->ready_file);
  config_tracing_free(&c->tracing);
  if (c->etcd_endpoints) {
    for (size_t i = 0; i < c->n_etcd_endpoints; i++) free(c->etcd_endpoints[i]);
    free(c->etcd_endpoints);
  }
  free(c);
}
