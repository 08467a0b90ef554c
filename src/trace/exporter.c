/* The OTLP span exporter; see exporter.h. */
#include "trace/exporter.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/periodic.h"
#include "trace/otlp.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

struct tracer {
  tracer_options opt;
  char *url;
  otlp_kv *resource;
  size_t n_resource;
  struct curl_slist *headers;
  CURL *curl;

  pthread_mutex_t mu; /* guards the ring */
  trace_span *ring;
  size_t head, count;

  trace_span *batch; /* the thread's copy of what it posts */
  periodic *worker;
  int64_t backoff_ms;       /* 0 while the collector answers */
  int64_t retry_at_ns;      /* no post before this (a kick cannot skip the back-off) */
  _Atomic int64_t abort_at_ns; /* shutdown: in-flight requests end by then */
  _Atomic uint64_t dropped;
  bool logged_down;
};

static void drop(tracer *t, uint64_t n) {
  if (n == 0) return;
  atomic_fetch_add(&t->dropped, n);
  if (t->opt.on_drop) t->opt.on_drop(t->opt.drop_arg, n);
}

void tracer_submit(tracer *t, const trace_span *spans, size_t n) {
  if (!t || n == 0) return;
  bool kick = false, full = false;
  pthread_mutex_lock(&t->mu);
  if (t->count + n > t->opt.queue_size) {
    full = true;
  } else {
    for (size_t i = 0; i < n; i++)
      t->ring[(t->head + t->count + i) % t->opt.queue_size] = spans[i];
    t->count += n;
    kick = t->count >= t->opt.batch_size && t->count - n < t->opt.batch_size;
  }
  pthread_mutex_unlock(&t->mu);
  if (full) {
    for (size_t i = 0; i < n; i++) trace_span_release((trace_span *)&spans[i]);
    drop(t, n);
  } else if (kick) {
    periodic_kick(t->worker);
  }
}

/* Moves up to a batch from the queue to t->batch, when at least min spans
 * wait; returns how many. */
static size_t take(tracer *t, size_t min) {
  pthread_mutex_lock(&t->mu);
  size_t n = t->count < t->opt.batch_size ? t->count : t->opt.batch_size;
  if (n < min) n = 0;
  for (size_t i = 0; i < n; i++) t->batch[i] = t->ring[(t->head + i) % t->opt.queue_size];
  t->head = (t->head + n) % t->opt.queue_size;
  t->count -= n;
  pthread_mutex_unlock(&t->mu);
  return n;
}

/* Ends a request once the shutdown bound has passed. */
static int progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  tracer *t = arg;
  int64_t at = atomic_load(&t->abort_at_ns);
  return at != 0 && clock_mono_ns() >= at;
}

static size_t discard(char *p, size_t size, size_t n, void *arg) {
  (void)p, (void)arg;
  return size * n;
}

/* Posts n spans of t->batch; 0 when the collector took them (2xx). */
static int post(tracer *t, size_t n, int64_t timeout_ms) {
  uint8_t *body = NULL;
  size_t len = 0;
  int rc = -1;
  if (otlp_encode(t->resource, t->n_resource, t->batch, n, &body, &len) != 0) goto cleanup;
  /* The rest of the handle's options were set once, at creation. */
  if (curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, (const char *)body) != CURLE_OK ||
      curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
      curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms) != CURLE_OK ||
      curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms) != CURLE_OK)
    goto cleanup;
  CURLcode cc = curl_easy_perform(t->curl);
  long status = 0;
  if (cc == CURLE_OK) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (cc == CURLE_OK && status >= 200 && status < 300) {
    rc = 0;
    if (t->logged_down) log_msg(LOG_INFO, "the trace collector answers again");
    t->logged_down = false;
  } else if (!t->logged_down) {
    /* Once per outage: a collector that is down must not flood the log. */
    log_line l;
    log_line_begin(&l, LOG_WARN, "cannot export spans: dropping them while the collector fails");
    log_line_str(&l, "error", cc == CURLE_OK ? "HTTP status" : curl_easy_strerror(cc));
    log_line_int(&l, "status", status);
    log_line_emit(&l);
    t->logged_down = true;
  }
cleanup:
  /* Sent or not, the batch is done with: what its spans own goes. */
  for (size_t i = 0; i < n; i++) trace_span_release(&t->batch[i]);
  free(body);
  return rc;
}

/* What every post has in common, set once on the handle (a post sets the
 * body and its time bounds). */
static int curl_setup(tracer *t) {
  return curl_easy_setopt(t->curl, CURLOPT_URL, t->url) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_POST, 1L) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_XFERINFOFUNCTION, progress) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_XFERINFODATA, t) != CURLE_OK ||
                 curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK
             ? -1
             : 0;
}

static int64_t tick(periodic *p, void *arg) {
  tracer *t = arg;
  int64_t now = clock_mono_ns();
  if (now < t->retry_at_ns) return (t->retry_at_ns - now) / 1000000 + 1;
  /* What waits now (a full batch after a kick, anything after the
   * interval), then only full batches: while calls keep coming, the rest
   * waits for the next kick or interval instead of going out as a trickle
   * of small posts, each an HTTP request for the collector and for us. */
  for (size_t min = 1; !periodic_stopping(p); min = t->opt.batch_size) {
    size_t n = take(t, min);
    if (n == 0) break;
    if (post(t, n, t->opt.timeout_ms) == 0) {
      t->backoff_ms = 0;
      continue;
    }
    /* Down or refusing: this batch is lost, and the queue is left to fill
     * (and drop) until the back-off ends, so a dead collector costs one
     * attempt per back-off, not one per batch. */
    drop(t, n);
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (t->backoff_ms > BACKOFF_MAX_MS) t->backoff_ms = BACKOFF_MAX_MS;
    t->retry_at_ns = clock_mono_ns() + t->backoff_ms * 1000000;
    return t->backoff_ms;
  }
  return PERIODIC_INTERVAL;
}

static int header_list(tracer *t, char *err, size_t errlen) {
  otlp_kv *kv = NULL;
  size_t n = 0;
  if (otlp_parse_kv_list(t->opt.headers, &kv, &n) != 0) {
    snprintf(err, errlen, "OTEL_EXPORTER_OTLP_HEADERS: not a list of key=value");
    return -1;
  }
  int rc = -1;
  struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
  if (!l) goto cleanup;
  t->headers = l;
  /* No "Expect: 100-continue" (libcurl adds it to a large POST): a
   * collector that does not answer it would cost each batch a second. */
  if (!(l = curl_slist_append(t->headers, "Expect:"))) goto cleanup;
  t->headers = l;
  for (size_t i = 0; i < n; i++) {
    char line[1024];
    int w = snprintf(line, sizeof line, "%s: %s", kv[i].key, kv[i].value);
    if (w < 0 || (size_t)w >= sizeof line || strpbrk(line, "\r\n")) {
      snprintf(err, errlen, "OTEL_EXPORTER_OTLP_HEADERS: header %zu is too long or not one line", i + 1);
      goto cleanup;
    }
    if (!(l = curl_slist_append(t->headers, line))) goto cleanup;
    t->headers = l;
  }
  rc = 0;
cleanup:
  if (rc != 0 && !err[0]) snprintf(err, errlen, "out of memory");
  otlp_kv_free(kv, n);
  return rc;
}

/* service.name, service.version, then OTEL_RESOURCE_ATTRIBUTES (whose own
 * service.name and service.version give way to the options). */
static int resource_list(tracer *t, char *err, size_t errlen) {
  otlp_kv *kv = NULL;
  size_t n = 0;
  if (otlp_parse_kv_list(t->opt.resource_attributes, &kv, &n) != 0) {
    snprintf(err, errlen, "OTEL_RESOURCE_ATTRIBUTES: not a list of key=value");
    return -1;
  }
  t->resource = calloc(n + 2, sizeof *t->resource);
  if (!t->resource) goto oom;
  t->resource[0].key = strdup("service.name");
  t->resource[0].value = strdup(t->opt.service_name ? t->opt.service_name : "product-service");
  t->resource[1].key = strdup("service.version");
  t->resource[1].value = strdup(t->opt.service_version ? t->opt.service_version : "");
  t->n_resource = 2;
  if (!t->resource[0].key || !t->resource[0].value || !t->resource[1].key ||
      !t->resource[1].value)
    goto oom;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(kv[i].key, "service.name") == 0 || strcmp(kv[i].key, "service.version") == 0)
      continue;
    t->resource[t->n_resource++] = kv[i];
    kv[i].key = kv[i].value = NULL;
  }
  otlp_kv_free(kv, n);
  return 0;
oom:
  otlp_kv_free(kv, n);
  snprintf(err, errlen, "out of memory");
  return -1;
}

int tracer_create(const tracer_options *opt, tracer **out, char *err, size_t errlen) {
  *out = NULL;
  err[0] = '\0';
  if (!opt || !opt->url) {
    snprintf(err, errlen, "no OTLP endpoint");
    return -1;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "cannot initialise libcurl");
    return -1;
  }
  tracer *t = calloc(1, sizeof *t);
  if (!t) {
    curl_global_cleanup();
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  t->opt = *opt;
  if (!t->opt.queue_size) t->opt.queue_size = 2048;
  if (!t->opt.batch_size) t->opt.batch_size = 512;
  if (t->opt.batch_size > t->opt.queue_size) t->opt.batch_size = t->opt.queue_size;
  if (t->opt.interval_ms <= 0) t->opt.interval_ms = 5000;
  if (t->opt.timeout_ms <= 0) t->opt.timeout_ms = 10000;
  if (t->opt.shutdown_ms <= 0) t->opt.shutdown_ms = 3000;
  pthread_mutex_init(&t->mu, NULL);
  t->url = strdup(opt->url);
  /* calloc: untouched slots of an idle queue cost no resident memory. */
  t->ring = calloc(t->opt.queue_size, sizeof *t->ring);
  t->batch = calloc(t->opt.batch_size, sizeof *t->batch);
  t->curl = curl_easy_init();
  if (!t->url || !t->ring || !t->batch || !t->curl) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if (header_list(t, err, errlen) != 0 || resource_list(t, err, errlen) != 0) goto fail;
  if (curl_setup(t) != 0) {
    snprintf(err, errlen, "cannot set up libcurl");
    goto fail;
  }
  periodic_options po = {.name = "otlp-export",
                         .tick = tick,
                         .arg = t,
                         .interval_ms = t->opt.interval_ms,
                         .min_gap_ms = 0};
  if (periodic_start(&po, &t->worker) != 0) {
    snprintf(err, errlen, "cannot start the exporter thread");
    goto fail;
  }
  *out = t;
  return 0;
fail:
  tracer_destroy(t);
  return -1;
}

void tracer_destroy(tracer *t) {
  if (!t) return;
  int64_t deadline = clock_mono_ns() + t->opt.shutdown_ms * 1000000;
  atomic_store(&t->abort_at_ns, deadline);
  periodic_stop(t->worker); /* waits for the batch in flight, bounded by the deadline */
  t->worker = NULL;
  /* The final flush, on this thread, within what is left of the bound. */
  if (t->curl && t->batch) {
    for (;;) {
      int64_t left_ms = (deadline - clock_mono_ns()) / 1000000;
      if (left_ms <= 0) break;
      size_t n = take(t, 1);
      if (n == 0) break;
      if (post(t, n, left_ms) != 0) {
        drop(t, n);
        break;
      }
    }
    pthread_mutex_lock(&t->mu);
    size_t left = t->count;
    for (size_t i = 0; i < left; i++)
      trace_span_release(&t->ring[(t->head + i) % t->opt.queue_size]);
    t->count = 0;
    pthread_mutex_unlock(&t->mu);
    drop(t, left);
  }
  if (t->curl) curl_easy_cleanup(t->curl);
  curl_slist_free_all(t->headers);
  otlp_kv_free(t->resource, t->n_resource);
  free(t->ring);
  free(t->batch);
  free(t->url);
  pthread_mutex_destroy(&t->mu);
  free(t);
  curl_global_cleanup();
}

uint64_t tracer_dropped(const tracer *t) { return t ? atomic_load(&((tracer *)t)->dropped) : 0; }
