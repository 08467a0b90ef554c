/* product-server: wiring. Parses the configuration, opens the store, builds
 * the API server (and the optional plaintext health port) on shared worker
 * queues, serves until SIGTERM/SIGINT, then drains and exits 0. Start-up
 * refusals print one line on stderr and exit 2. */
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/defaults.h"
#include "auth/jwt_verify.h"
#include "auth/keyring.h"
#include "auth/page_token.h"
#include "auth/verified_tokens.h"
#include "config/config.h"
#include "core/log.h"
#include "core/rate_limiter.h"
#include "guard/conn_guard.h"
#include "guard/err_clear.h"
#include "guard/guard_selftest.h"
#include "guard/h2_guard.h"
#include "guard/tls_tune.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "metrics/metrics_store.h"
#include "registry/registry.h"
#include "service/env.h"
#include "trace/exporter.h"
#include "service/health.h"
#include "service/methods.h"
#include "service/store_health.h"
#include "store/store.h"
#include "transport/grpc_log.h"
#include "transport/grpc_tuning.h"
#include "transport/mem_guard.h"
#include "transport/server.h"
#include "transport/tls.h"
#include "transport/workers.h"

#define EXIT_USAGE 2
#define REQUESTS_PER_METHOD 32

typedef struct app {
  config *cfg;
  store *store;
  jwt_verifier *verifier; /* single secret, no revocation list */
  keyring *keyring;       /* otherwise */
  page_key *page_key;
  health_state *health;
  rpc_workers *workers;
  rpc_server *api;
  rpc_server *health_srv;
  tls_reloader *tls;
  metrics *metrics;
  metrics_http *metrics_http;
  int metrics_port;
  registry *registry; /* etcd registration, when --etcd-endpoints is given */
  store_health *store_health; /* product.ProductService follows the store's health */
  mem_guard *mem;             /* memory limit: shedding and trimming */
  conn_guard *conn_guard;     /* rapid-reset connections closed */
  conn_guard *unknown_guard;  /* and those flooding unknown methods */
  bool guard_on;              /* the HTTP/2 guard runs (not --h2-guard=off) */
  rpc_server_guard guard_ops; /* how the servers reach it */
  pthread_mutex_t pressure_mu; /* guards api_serving against teardown */
  bool api_serving;
  service_env env;
  rate_limiter *limiter;     /* NULL when every rate limit is off */
  verified_tokens *verified; /* with it: tokens verified recently */
  tracer *tracer; /* the span exporter, when an OTLP endpoint is set */
  bool grpc_up;
} app;

static int refuse(const char *what) {
  fprintf(stderr, "product-server: %s\n", what);
  return EXIT_USAGE;
}

/* Writes "HOST:PORT" atomically (temp file + rename) so a reader never sees
 * half a line. */
static int write_ready_file(const char *path, const config_addr *listen, int port) {
  char line[320];
  bool v6 = strchr(listen->host, ':') != NULL;
  int n = snprintf(line, sizeof line, v6 ? "[%s]:%d\n" : "%s:%d\n", listen->host, port);
  char tmp[4096];
  /* mkstemp: O_EXCL on an unpredictable name, so a link planted in a shared
   * directory cannot redirect the write. */
  if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) return -1;
  int fd = mkstemp(tmp);
  if (fd < 0) return -1;
  bool ok = fchmod(fd, 0644) == 0 && write(fd, line, (size_t)n) == n;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

typedef struct worker_layout {
  int queues;
  int threads;
} worker_layout;

/* Sized from the CPU affinity mask (taskset), not the machine: two threads
 * per CPU. Durable stores block in handlers (fsync, network): one shared
 * queue, so a free thread takes calls queued behind a blocked one. The
 * memory store never blocks: one queue per pair of threads, so a call's
 * events mostly stay on one or two threads. Not one thread per queue: the
 * core runs a burst of new connections (3,000 idle ones at once) on the
 * thread that saw the listener wake up, for as long as the burst lasts, and
 * the calls its queue is handed wait for it; with a second thread on the
 * queue a legitimate call's p99 under that burst went from 77-310 ms to
 * 13-32 ms (docs/h2-abuse-report.md). */
static worker_layout layout_for(const config *cfg) {
  int threads = cfg->threads > 0 ? cfg->threads : 2 * rpc_cpu_count();
  if (strcmp(cfg->store_spec, "memory") == 0)
    return (worker_layout){.queues = threads >= 2 ? threads / 2 : 1, .threads = threads};
  return (worker_layout){.queues = 1, .threads = threads};
}

static int threads_for(const config *cfg) { return layout_for(cfg).threads; }

static void log_startup(const app *a, int port) {
  log_line l;
  log_line_begin(&l, LOG_INFO, "product-server serving");
  log_line_str(&l, "version", PRODUCT_VERSION);
  log_line_str(&l, "grpc_core", grpc_version_string());
  log_line_int(&l, "port", port);
  log_line_int(&l, "workers", threads_for(a->cfg));
  if (a->metrics_http) log_line_int(&l, "metrics_port", a->metrics_port);
  config_describe(a->cfg, &l);
  if (a->keyring) keyring_describe(a->keyring, &l); /* kids, never k */
  tls_reloader_describe(a->tls, &l); /* the certificate in use (no-op for plaintext) */
  log_line_emit(&l);
}

static void count_keys(void *arg, size_t n) { metrics_set_jwt_keys(arg, n); }

/* Token verification: the single-secret verifier as it always was, or, with
 * a key set or a revocation list, the reloading keyring. Its refusals (a bad
 * key, a malformed line) are start-up errors: exit 2. */
static int setup_auth(app *a, char *err, size_t errlen) {
  const config *cfg = a->cfg;
  jwt_verifier_options vo = {
      .secret = cfg->jwt_secret.bytes,
      .secret_len = cfg->jwt_secret.len,
      .issuer = cfg->jwt_issuer,
      .audience = cfg->jwt_audience,
      .leeway_s = cfg->jwt_leeway_s,
  };
  if (cfg->jwt_keys_file || cfg->jwt_revocations_file) {
    keyring_options ko = {
        .keys_path = cfg->jwt_keys_file,
        .revocations_path = cfg->jwt_revocations_file,
        .base = &vo,
        .on_keys = a->metrics ? count_keys : NULL,
        .on_keys_arg = a->metrics,
    };
    if (keyring_create(&ko, &a->keyring, err, errlen) != 0) return -1;
  } else {
    if (jwt_verifier_create(&vo, &a->verifier) != 0) {
      snprintf(err, errlen, "cannot set up token verification");
      return -1;
    }
    metrics_set_jwt_keys(a->metrics, 1);
  }
  /* With a key set, page tokens use the keys of the snapshot in force
   * (keyring_snap_page_keys); the secret's page key is for the other mode. */
  if (!cfg->jwt_keys_file &&
      !(a->page_key = page_key_create(cfg->jwt_secret.bytes, cfg->jwt_secret.len))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (a->keyring && keyring_start(a->keyring) != 0) {
    snprintf(err, errlen, "cannot start the key file watcher");
    return -1;
  }
  return 0;
}

/* The guard closed a connection: on the guard's report thread, never on
 * the core's I/O threads. Every close is counted; log lines are rate-limited
 * by the guard, and the next logged line says how many were not. */
static void on_h2_abuse(void *ctx, const h2_guard_report *r) {
  app *a = ctx;
  static const metrics_abuse_reason reasons[H2_VERDICT_COUNT] = {
      [H2_HEADER_BLOCK] = METRICS_ABUSE_HEADER_BLOCK,
      [H2_PING_FLOOD] = METRICS_ABUSE_PING_FLOOD,
      [H2_SETTINGS_FLOOD] = METRICS_ABUSE_SETTINGS_FLOOD,
      [H2_EMPTY_FRAMES] = METRICS_ABUSE_EMPTY_FRAMES,
      [H2_RST_FLOOD] = METRICS_ABUSE_RST_FLOOD,
      [H2_ZERO_WINDOW] = METRICS_ABUSE_ZERO_WINDOW,
      [H2_UNACKED_SETTINGS] = METRICS_ABUSE_UNACKED_SETTINGS,
      [H2_GOAWAY_FLOOD] = METRICS_ABUSE_GOAWAY_FLOOD,
      [H2_SMALL_DATA] = METRICS_ABUSE_SMALL_DATA,
      [H2_PENDING_DATA] = METRICS_ABUSE_PENDING_DATA,
      [H2_RAPID_RESET] = METRICS_ABUSE_RAPID_RESET,
      [H2_UNKNOWN_METHODS] = METRICS_ABUSE_UNKNOWN_METHODS,
  };
  if (r->uncovered) {
    /* Not a close: connections outside the guard's limits (no record), or
     * TLS ones outside the per-connection reset count (SSL not tied). */
    (r->untied ? metrics_guard_untied : metrics_guard_uncovered)(a->metrics, r->uncovered);
    if (!r->log) return;
    log_line l;
    log_line_begin(&l, LOG_WARN,
                   r->untied ? "TLS connections the HTTP/2 guard could not tie to their SSL: their "
                               "per-connection rapid-reset count does not apply (per-SSL frame "
                               "limits do)"
                             : "served connections the HTTP/2 guard could not cover (no memory "
                               "for their record): no limit of the guard's applies to them");
    log_line_int(&l, "connections", (int64_t)r->uncovered);
    log_line_int(&l, "total", (int64_t)r->uncovered_total);
    if (r->suppressed) log_line_int(&l, "unlogged_before", (int64_t)r->suppressed);
    log_line_emit(&l);
    return;
  }
  if ((unsigned)r->why < H2_VERDICT_COUNT && r->why != H2_OK)
    metrics_abusive_closed(a->metrics, reasons[r->why]);
  if (!r->log) return;
  log_line l;
  log_line_begin(&l, LOG_WARN, "closed an abusive connection");
  log_line_str(&l, "peer", r->peer);
  log_line_str(&l, "reason", h2_verdict_name(r->why));
  if (r->suppressed) log_line_int(&l, "unlogged_before", (int64_t)r->suppressed);
  log_line_emit(&l);
}

/* Below this much unsent output a client is reading: not worth closing. */
#define STALLED_MIN_UNSENT (64 * 1024)
/* The start-up probe's hang guard (it normally ends within milliseconds). */
#define GUARD_PROBE_TIMEOUT_MS 10000

static int guard_listening(void *ctx, bool tls, int *listeners) {
  (void)ctx;
  return h2_guard_claim(tls, listeners) > 0 ? 0 : -1;
}

static bool guard_connection(void *ctx, const char *peer, int listeners, rpc_guard_conn *out) {
  (void)ctx;
  h2_conn c;
  if (!h2_guard_find_on(peer, listeners, &c)) return false;
  *out = (rpc_guard_conn){.fd = c.fd, .gen = c.gen};
  return true;
}

static int64_t guard_reply_bytes(void *ctx, rpc_guard_conn c, int64_t delta) {
  (void)ctx;
  return h2_guard_reply_bytes((h2_conn){.fd = c.fd, .gen = c.gen}, delta);
}

static void guard_cancelled(void *ctx, const char *peer) {
  app *a = ctx;
  conn_guard_note(a->conn_guard, peer, clock_mono_ns());
}

static void guard_unknown(void *ctx, rpc_guard_conn c) {
  app *a = ctx;
  conn_guard_note_conn(a->unknown_guard, (h2_conn){.fd = c.fd, .gen = c.gen}, clock_mono_ns());
}

static int guard_close_costliest(void *ctx) {
  (void)ctx;
  return h2_guard_close_stalled(STALLED_MIN_UNSENT);
}

static int start_h2_guard(app *a, const config_limits *k, char *err, size_t errlen) {
  if (a->cfg->h2_guard_off) {
    log_msg(LOG_WARN, "serving WITHOUT the HTTP/2 guard (--h2-guard=off / H2_GUARD=off): no "
                      "rapid-reset, frame or stalled-reader limit of ours is enforced");
    return 0;
  }
  /* The guard interposes on the core's reads: written and proven for one
   * core. Another one may read another way, and every defence would be off
   * silently; the start-up probe checks the path, this the version. */
  const char *core = grpc_version_string();
  if (strcmp(core, PRODUCT_GRPC_CORE_VERSION) != 0) {
    snprintf(err, errlen, "the HTTP/2 guard was written for gRPC core %s, this is %s: refusing to "
             "serve unguarded (--h2-guard=off runs without it)", PRODUCT_GRPC_CORE_VERSION, core);
    return -1;
  }
  /* Twice the metadata limit: HPACK may encode a header list larger than
   * its decoded size only by so much; a 1 GiB literal never fits. */
  int64_t block = k->max_header_list_bytes * 2;
  if (block < 64 << 10) block = 64 << 10;
  h2_limits lim = {
      .header_block_bytes = (uint32_t)block,
      .header_block_frames = (uint32_t)k->h2_continuations,
      .pings_per_s = (uint32_t)k->h2_pings_per_s,
      .settings_per_s = (uint32_t)k->h2_settings_per_s,
      .empty_data_per_s = (uint32_t)k->h2_empty_data_per_s,
      .rst_per_s = (uint32_t)k->h2_rst_per_s,
      /* A client that announced a zero window gets the streams it may have
       * open at once; more without granting credit only pile up answers. */
      .zero_window_streams = (uint32_t)k->max_concurrent_streams,
      /* Before the client acknowledges our SETTINGS the 1.51 core holds
       * it to no stream limit at all. grpc-go and nghttp2 (grpc-js) clients
       * assume 100 streams until our SETTINGS arrive, the core's clients
       * wait for them: twice the limit, at least 200, lets all of them. */
      .streams_before_ack = (uint32_t)(k->max_concurrent_streams * 2 > 200
                                           ? k->max_concurrent_streams * 2 : 200),
      /* One to announce the close, perhaps a second with the last stream:
       * a few more for clients that repeat themselves. */
      .goaways = 4,
      /* Our requests are one message a stream (a reflection stream a
       * handful): a stream pays for its own small frames. The burst and the
       * payback cover reflection sessions on one connection; a message fed
       * a byte a frame is closed within some 40 KB of the core's memory. */
      .small_data_burst = 1024,
      .small_data_per_s = 64,
      .small_data_per_stream = 4,
      /* Four requests of the largest size (4 MiB) in flight at once on a
       * connection; their streams at most four times the stream limit
       * (streams the server ended early, on an oversized message, stay
       * counted until the client ends them). */
      .pending_bytes = (uint64_t)4 * (4 << 20),
      .pending_streams = (uint32_t)k->max_concurrent_streams * 4,
  };
  a->conn_guard = conn_guard_create(k->rapid_reset_per_s, CONN_GUARD_RESETS);
  a->unknown_guard = conn_guard_create(k->rapid_reset_per_s, CONN_GUARD_UNKNOWN);
  if (!a->conn_guard || !a->unknown_guard || h2_guard_start(&lim, on_h2_abuse, a) != 0) {
    snprintf(err, errlen, "cannot start the HTTP/2 guard");
    return -1;
  }
  a->guard_on = true;
  a->guard_ops = (rpc_server_guard){
      .ctx = a,
      .listening = guard_listening,
      .cancelled = guard_cancelled,
      .connection = guard_connection,
      .unknown_method = guard_unknown,
      .close_costliest = guard_close_costliest,
      .reply_bytes = guard_reply_bytes,
  };
  return 0;
}

/* Fail loud: a loopback connection that breaks a limit must be refused by
 * the guard before the server says it is ready. */
static int prove_guard(app *a, const config_addr *addr, int port, bool tls, char *err,
                       size_t errlen) {
  if (!a->guard_on) return 0;
  guard_probe_target t = {.host = addr->host, .port = port, .tls = tls,
                          .mtls = tls && a->cfg->tls_client_ca != NULL};
  if (guard_selftest(&t, GUARD_PROBE_TIMEOUT_MS, err, errlen) != 0) {
    size_t n = strlen(err);
    snprintf(err + n, errlen - n, "; refusing to serve unguarded (--h2-guard=off runs without it)");
    return -1;
  }
  return 0;
}

/* Over the memory limit (and back under it): the service's health says so,
 * so that a balancer stops sending calls here meanwhile. On the memory
 * guard's thread. */
static void on_memory_shed(void *ctx, bool shedding) {
  app *a = ctx;
  health_set_overloaded(a->health, shedding);
}

static void on_memory_pressure(void *ctx) {
  app *a = ctx;
  pthread_mutex_lock(&a->pressure_mu);
  if (a->api_serving) rpc_server_close_costliest(a->api);
  pthread_mutex_unlock(&a->pressure_mu);
}

static void set_api_serving(app *a, bool on) {
  pthread_mutex_lock(&a->pressure_mu);
  a->api_serving = on;
  pthread_mutex_unlock(&a->pressure_mu);
}

/* The rate limiter and the verified-token set it names callers with
 * (interceptors/rate_limit.c); neither when every limit is off. */
#define VERIFIED_TOKEN_SLOTS 4096
static int setup_rate_limits(app *a, char *err, size_t errlen) {
  const config_rate_limits *k = &a->cfg->rate_limits;
  rl_rate rates[RL_LIMIT_COUNT] = {
      [RL_READ] = {k->read.rate, k->read.burst},
      [RL_WRITE] = {k->write.rate, k->write.burst},
      [RL_AUTH_FAILURE] = {k->auth_failure.rate, k->auth_failure.burst},
  };
  if (rates[RL_READ].rate <= 0 && rates[RL_WRITE].rate <= 0 && rates[RL_AUTH_FAILURE].rate <= 0)
    return 0;
  a->limiter = rate_limiter_create(rates, (size_t)k->keys);
  a->verified = verified_tokens_create(VERIFIED_TOKEN_SLOTS);
  if (!a->limiter || !a->verified) {
    snprintf(err, errlen, "out of memory for the rate limiter");
    return -1;
  }
  return 0;
}

static void on_spans_dropped(void *arg, uint64_t n) {
  metrics_spans_dropped(((app *)arg)->metrics, n);
}

static int build(app *a, int *port, char *err, size_t errlen) {
  const config *cfg = a->cfg;
  store_options so = {.pool_size = threads_for(cfg), .group_commit = true};
  if (store_open(cfg->store_spec, &so, &a->store, err, errlen) != 0) return -1;
  if (cfg->metrics_listen.set && metrics_create_default(&a->metrics) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* The timing wrapper also makes each store operation a child span. */
  if (cfg->metrics_listen.set || cfg->tracing.otlp_url) {
    store *timed = metrics_store_wrap(a->metrics, a->store);
    if (!timed) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    a->store = timed;
  }
  if (cfg->tracing.warning[0]) log_msg(LOG_WARN, cfg->tracing.warning);
  if (cfg->tracing.otlp_url) {
    tracer_options to = {
        .url = cfg->tracing.otlp_url,
        .headers = cfg->tracing.headers,
        .service_name = cfg->tracing.service_name,
        .service_version = PRODUCT_VERSION,
        .resource_attributes = cfg->tracing.resource_attributes,
        .queue_size = (size_t)cfg->tracing.queue_size,
        .batch_size = (size_t)cfg->tracing.batch_size,
        .interval_ms = cfg->tracing.schedule_delay_ms,
        .timeout_ms = cfg->tracing.export_timeout_ms,
        .on_drop = on_spans_dropped,
        .drop_arg = a,
    };
    char why[256];
    if (tracer_create(&to, &a->tracer, why, sizeof why) != 0) {
      snprintf(err, errlen, "tracing: %s", why);
      return -1;
    }
  }

  if (setup_auth(a, err, errlen) != 0) return -1;
  static const char *const services[] = {"product.ProductService"};
  a->health = health_state_create(services, 1);
  if (!a->health) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (setup_rate_limits(a, err, errlen) != 0) return -1;
  a->env = (service_env){
      .cfg = cfg, .store = a->store, .verifier = a->verifier, .keyring = a->keyring,
      .page_key = a->page_key,
      .health = a->health, .metrics = a->metrics, .tracer = a->tracer,
      .limiter = a->limiter, .verified = a->verified,
  };
  a->store_health = store_health_start(a->store, a->health, "product.ProductService",
                                       STORE_HEALTH_INTERVAL_MS);
  if (!a->store_health) {
    snprintf(err, errlen, "cannot start the store health watcher");
    return -1;
  }

  mem_guard_options mo = {
      .limit_bytes = cfg->limits.memory_limit_bytes,
      .interval_ms = MEM_GUARD_INTERVAL_MS,
      .on_shed = on_memory_shed,
      .pressure = on_memory_pressure,
      .ctx = a,
  };
  a->mem = mem_guard_start(&mo);
  if (!a->mem) {
    snprintf(err, errlen, "cannot start the memory guard");
    return -1;
  }
  if (start_h2_guard(a, &cfg->limits, err, errlen) != 0) return -1;

  worker_layout wl = layout_for(cfg);
  if (rpc_workers_create(wl.queues, wl.threads, &a->workers) != 0) {
    snprintf(err, errlen, "cannot create completion queues");
    return -1;
  }

  /* Before the core makes its first server SSL: X25519, one ticket, and
   * TLS 1.3 only when asked (guard/tls_tune.h); refuses to serve when the
   * hook is not in the path, like the guard. */
  /* OpenSSL's ERR_clear_error returns at once on an empty queue (the core
   * calls it about five times per TLS call); libpq and libcurl share it. A
   * speed lever, not a defence: if it cannot prove itself, every call goes
   * to OpenSSL's own and the server says so. */
  char why[256], line[400];
  if (err_clear_start(why, sizeof why) != 0) {
    snprintf(line, sizeof line, "%s: every ERR_clear_error goes to OpenSSL's", why);
    log_msg(LOG_WARN, line);
  }
  tls_tune_opts tune = {.tls13_only = cfg->tls13_only};
  if (cfg->tls_cert && tls_tune_start(&tune, err, errlen) != 0) return -1;
  grpc_server_credentials *creds;
  if (tls_server_credentials(cfg, &creds, &a->tls, err, errlen) != 0) return -1;
  rpc_server_options api = {
      .name = "api",
      .listen = &cfg->listen,
      .creds = creds,
      .tls = cfg->tls_cert != NULL,
      .methods = service_methods,
      .n_methods = service_methods_count,
      .serve_health_watch = true,
      .serve_reflection = true,
      .workers = a->workers,
      .health = a->health,
      .env = &a->env,
      .metrics = a->metrics,
      .pipeline = pipeline_default(),
      .requests_per_method = REQUESTS_PER_METHOD,
      .limits = &cfg->limits,
      .mem = a->mem,
      .guard = a->guard_on ? &a->guard_ops : NULL,
  };
  if (rpc_server_create(&api, &a->api, err, errlen) != 0) return -1;

  if (cfg->health_listen.set) {
    static const method_desc *const health_only[] = {&health_check_method};
    rpc_server_options ho = api;
    ho.name = "health";
    ho.listen = &cfg->health_listen;
    ho.creds = grpc_insecure_server_credentials_create();
    ho.tls = false;
    ho.methods = health_only;
    ho.n_methods = 1;
    ho.serve_reflection = false; /* health and nothing else */
    ho.requests_per_method = 2;
    if (rpc_server_create(&ho, &a->health_srv, err, errlen) != 0) return -1;
  }

  if (a->metrics && metrics_http_start(a->metrics, &cfg->metrics_listen, &a->metrics_http,
                                       &a->metrics_port, err, errlen) != 0)
    return -1;
  /* Workers first: once a server posts requests, someone must drain the
   * queues, or a failed start could not shut down. */
  if (rpc_workers_start(a->workers) != 0) {
    snprintf(err, errlen, "cannot start worker threads");
    return -1;
  }
  if (rpc_server_start(a->api, port, err, errlen) != 0) return -1;
  set_api_serving(a, true);
  int hport;
  if (a->health_srv && rpc_server_start(a->health_srv, &hport, err, errlen) != 0) return -1;
  if (prove_guard(a, &cfg->listen, *port, cfg->tls_cert != NULL, err, errlen) != 0) return -1;
  if (a->health_srv && prove_guard(a, &cfg->health_listen, hport, false, err, errlen) != 0)
    return -1;
  return 0;
}

/* Registers in etcd once the server serves: the advertise address, by
 * default the bound one as the ready file has it. */
static int start_registry(app *a, int port, char *err, size_t errlen) {
  const config *cfg = a->cfg;
  if (!cfg->etcd_endpoints || cfg->n_etcd_endpoints == 0) return 0;
  char bound[320];
  bool v6 = strchr(cfg->listen.host, ':') != NULL;
  snprintf(bound, sizeof bound, v6 ? "[%s]:%d" : "%s:%d", cfg->listen.host, port);
  registry_options ro = {
      .endpoints = (const char *const *)cfg->etcd_endpoints,
      .n_endpoints = cfg->n_etcd_endpoints,
      .advertise = cfg->advertise.set ? cfg->advertise.text : bound,
  };
  return registry_start(&ro, &a->registry, err, errlen);
}

static void drain(app *a) {
  /* Deregister first, so that no new client finds a server that drains. */
  registry_stop(a->registry);
  a->registry = NULL;
  log_flush(); /* the call lines so far come before the shutdown line */
  log_msg(LOG_INFO, "shutting down: draining calls in flight");
  if (a->health) health_finish(a->health);
  if (a->api) rpc_server_begin_shutdown(a->api);
  if (a->health_srv) rpc_server_begin_shutdown(a->health_srv);
  int64_t deadline = clock_mono_ns() + a->cfg->drain_ms * 1000000;
  if (a->api) rpc_server_finish_shutdown(a->api, deadline);
  if (a->health_srv) rpc_server_finish_shutdown(a->health_srv, deadline);
}

static void teardown(app *a) {
  store_health_stop(a->store_health); /* it reads the store and sets health */
  metrics_http_stop(a->metrics_http);
  set_api_serving(a, false); /* before the server goes */
  /* Servers first (they own requests on the queues), then the queues. */
  rpc_server_destroy(a->api);
  rpc_server_destroy(a->health_srv);
  if (a->guard_on) h2_guard_stop(); /* before the metrics it reports to */
  if (a->workers) {
    rpc_workers_stop(a->workers);
    rpc_workers_destroy(a->workers);
  }
  tls_reloader_destroy(a->tls);
  /* Every call has ended: the last spans are flushed (bounded), then go. */
  tracer_destroy(a->tracer);
  if (a->store) {
    if (store_flush(a->store) != STORE_OK) log_msg(LOG_ERROR, "store flush failed at shutdown");
    store_destroy(a->store);
  }
  /* After the servers: calls read the one and note cancels in the other. */
  mem_guard_stop(a->mem);
  conn_guard_destroy(a->conn_guard);
  conn_guard_destroy(a->unknown_guard);
  rate_limiter_destroy(a->limiter); /* after the servers: no call uses it */
  verified_tokens_destroy(a->verified);
  jwt_verifier_destroy(a->verifier);
  keyring_destroy(a->keyring); /* after the servers: no call holds a snapshot */
  page_key_destroy(a->page_key);
  health_state_destroy(a->health);
  metrics_destroy(a->metrics); /* after the store: the timing wrapper uses it */
  if (a->grpc_up) grpc_shutdown();
  config_destroy(a->cfg);
  pthread_mutex_destroy(&a->pressure_mu);
}

static const char *env_lookup(const char *name) { return getenv(name); }

int main(int argc, char **argv) {
  /* Block the stop signals before any thread exists (core threads inherit
   * the mask); the main thread waits for them with sigwait. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  app a;
  memset(&a, 0, sizeof a);
  pthread_mutex_init(&a.pressure_mu, NULL);
  char err[512];
  config_result cr = config_parse(argc, argv, env_lookup, stdout, &a.cfg, err, sizeof err);
  if (cr == CONFIG_EXIT_SUCCESS) return 0;
  if (cr != CONFIG_OK) return refuse(err);
  config_resolve_memory_limit(a.cfg);
  log_set_format(a.cfg->log_format);

  grpc_log_install();
  grpc_tuning_apply();
  grpc_log_set_quiet(true); /* until serving: our own line says why start-up failed */
  grpc_init();
  a.grpc_up = true;

  int port = 0;
  if (build(&a, &port, err, sizeof err) != 0) {
    teardown(&a);
    return refuse(err);
  }
  if (a.cfg->ready_file && write_ready_file(a.cfg->ready_file, &a.cfg->listen, port) != 0) {
    snprintf(err, sizeof err, "cannot write the ready file %s", a.cfg->ready_file);
    drain(&a);
    teardown(&a);
    return refuse(err);
  }
  grpc_log_set_quiet(false);
  log_startup(&a, port);
  /* The verifier and the page-token key hold what they need: the secret
   * itself leaves memory and the environment. */
  if (a.cfg->jwt_secret.bytes) secret_wipe(&a.cfg->jwt_secret);
  unsetenv("JWT_SECRET");
  log_start_buffering();
  if (start_registry(&a, port, err, sizeof err) != 0) {
    drain(&a);
    teardown(&a);
    log_stop_buffering();
    return refuse(err);
  }

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  drain(&a);
  teardown(&a);
  log_msg(LOG_INFO, "stopped");
  log_stop_buffering();
  return 0;
}
