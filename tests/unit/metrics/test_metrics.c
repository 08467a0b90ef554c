/* Tests for src/metrics/ and interceptors/metrics.c (the default registry:
 * tests/unit/app/test_defaults.c): the registry's sharded
 * counters sum exactly across threads, every series exists at 0, histograms
 * bucket with `le` semantics and render cumulatively, the text is valid
 * Prometheus exposition (escaping, Go-style numbers), the timing store
 * passes everything through, and the interceptor counts what
 * go-grpc-prometheus counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "interceptors/interceptors.h"
#include "metrics/metrics.h"
#include "metrics/metrics_store.h"
#include "metrics/metrics_text.h"
#include "service/env.h"
#include "service/methods.h"
#include "support/metrics_scrape.h"

/* ------------------------------------------------------------ fixtures --- */

static void handler_ok(call_ctx *c);
static const method_desc row_a = {.path = "/t.Svc/A", .service = "t.Svc", .name = "A",
                                  .handler = handler_ok, .index = 0};
static const method_desc row_b = {.path = "/t.Svc/B", .service = "t.Svc", .name = "B",
                                  .handler = handler_ok, .index = 7 /* not its slot */};
static const method_desc row_other = {.path = "/t.Svc/C", .service = "t.Svc", .name = "C",
                                      .handler = handler_ok, .index = 0};

static const metrics_method test_methods[] = {
    {.service = "t.Svc", .name = "A", .type = METRICS_UNARY, .desc = &row_a},
    {.service = "t.Svc", .name = "B", .type = METRICS_UNARY, .desc = &row_b},
    {.service = "t.Svc", .name = "Stream", .type = METRICS_BIDI_STREAM},
};
static const char *const test_reasons[] = {"expired", "no_token", "expired", "missing_role"};

static metrics *make_registry(void) {
  metrics_options opt = {.methods = test_methods,
                         .n_methods = 3,
                         .auth_reasons = test_reasons,
                         .n_auth_reasons = 4};
  metrics *m = NULL;
  assert_int_equal(metrics_create(&opt, &m), 0);
  return m;
}

/* How many times `needle` occurs in `text`. */
static size_t count_of(const char *text, const char *needle) {
  size_t n = 0, len = strlen(needle);
  for (size_t i = 0; text[i]; i++) n += strncmp(text + i, needle, len) == 0;
  return n;
}

#define SERIES(name, method, type) \
  name "{grpc_method=\"" method "\",grpc_service=\"t.Svc\",grpc_type=\"" type "\"}"
#define HANDLED(method, code) \
  "grpc_server_handled_total{grpc_code=\"" code "\",grpc_method=\"" method \
  "\",grpc_service=\"t.Svc\",grpc_type=\"unary\"}"
#define BUCKET(method, le) \
  "grpc_server_handling_seconds_bucket{grpc_method=\"" method \
  "\",grpc_service=\"t.Svc\",grpc_type=\"unary\",le=\"" le "\"}"

/* ------------------------------------------------------------ registry --- */

static void test_every_series_exists_at_zero_with_its_type(void **state) {
  (void)state;
  metrics *m = make_registry();
  char *text = scrape_render(m);
  assert_true(scrape_has_line(text, "# TYPE grpc_server_handled_total counter"));
  assert_true(scrape_has_line(text, "# TYPE grpc_server_handling_seconds histogram"));
  assert_true(scrape_has_line(text, "# TYPE grpc_server_started_total counter"));
  assert_true(scrape_has_line(text, "# TYPE grpc_server_msg_received_total counter"));
  assert_true(scrape_has_line(text, "# TYPE grpc_server_msg_sent_total counter"));
  static const char *const codes[] = {"OK", "Canceled", "Unknown", "InvalidArgument",
                                      "DeadlineExceeded", "NotFound", "AlreadyExists",
                                      "PermissionDenied", "ResourceExhausted",
                                      "FailedPrecondition", "Aborted", "OutOfRange",
                                      "Unimplemented", "Internal", "Unavailable", "DataLoss",
                                      "Unauthenticated"};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    char series[256];
    snprintf(series, sizeof series,
             "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"B\",grpc_service=\"t.Svc\","
             "grpc_type=\"unary\"}",
             codes[i]);
    assert_true(scrape_value(text, series) == 0);
  }
  assert_true(scrape_value(text, SERIES("grpc_server_started_total", "Stream", "bidi_stream")) == 0);
  assert_true(scrape_value(text, BUCKET("A", "+Inf")) == 0);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"other\"}") == 0);
  assert_true(scrape_value(text,
                       "product_store_operation_seconds_count{operation=\"list\"}") == 0);
  assert_true(scrape_value(text, "process_open_fds") > 0);
  assert_true(scrape_value(text, "process_resident_memory_bytes") > 0);
  assert_true(scrape_value(text, "process_start_time_seconds") > 1e9);
  assert_non_null(strstr(text, "\nprocess_cpu_seconds_total "));
  free(text);
  metrics_destroy(m);
}

static void test_duplicate_reasons_are_merged_and_unknown_ones_count_as_other(void **state) {
  (void)state;
  metrics *m = make_registry();
  metrics_auth_rejected(m, "expired");
  metrics_auth_rejected(m, "expired");
  metrics_auth_rejected(m, "no_token");
  metrics_auth_rejected(m, "something_new");
  metrics_auth_rejected(m, NULL);
  char *text = scrape_render(m);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"expired\"}") == 2);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"no_token\"}") == 1);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"missing_role\"}") == 0);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"other\"}") == 2);
  /* "expired" is listed twice in the options but rendered once. */
  assert_int_equal(count_of(text, "reason=\"expired\""), 1);
  free(text);
  metrics_destroy(m);
}

static void test_method_lookup_by_row_and_by_name(void **state) {
  (void)state;
  metrics *m = make_registry();
  assert_int_equal(metrics_method_of(m, &row_a), 0);
  assert_int_equal(metrics_method_of(m, &row_b), 1); /* index 7 is not its slot */
  assert_int_equal(metrics_method_of(m, &row_other), -1);
  assert_int_equal(metrics_method_of(NULL, &row_a), -1);
  assert_int_equal(metrics_method_find(m, "t.Svc", "Stream"), 2);
  assert_int_equal(metrics_method_find(m, "t.Svc", "Nope"), -1);
  /* Ids that are not counted are ignored, as is a missing registry. */
  metrics_started(m, -1);
  metrics_started(m, 3);
  metrics_started(NULL, 0);
  metrics_handled(m, 99, RPC_OK, 1);
  char *text = scrape_render(m);
  assert_true(scrape_value(text, SERIES("grpc_server_started_total", "A", "unary")) == 0);
  free(text);
  metrics_destroy(m);
}

static void test_a_method_without_a_name_is_refused(void **state) {
  (void)state;
  metrics_method bad[] = {{.service = "s", .name = "", .type = METRICS_UNARY}};
  metrics_options opt = {.methods = bad, .n_methods = 1};
  metrics *m = (metrics *)&opt; /* must be reset to NULL */
  assert_int_not_equal(metrics_create(&opt, &m), 0);
  assert_null(m);
}

static void test_histogram_buckets_use_le_and_render_cumulatively(void **state) {
  (void)state;
  metrics *m = make_registry();
  metrics_handled(m, 0, RPC_OK, 3000000);          /* 3 ms -> le 0.005 */
  metrics_handled(m, 0, RPC_OK, 5000000);          /* exactly 5 ms -> le 0.005 */
  metrics_handled(m, 0, RPC_NOT_FOUND, 5000001);   /* just above -> le 0.01 */
  metrics_handled(m, 0, RPC_INTERNAL, 700000000);  /* 0.7 s -> le 1 */
  metrics_handled(m, 0, RPC_OK, 20000000000);      /* 20 s -> +Inf only */
  metrics_handled(m, 0, (rpc_code)99, -5);         /* bad code -> Unknown, 0 s */
  char *text = scrape_render(m);
  assert_true(scrape_value(text, BUCKET("A", "0.005")) == 3);
  assert_true(scrape_value(text, BUCKET("A", "0.01")) == 4);
  assert_true(scrape_value(text, BUCKET("A", "0.5")) == 4);
  assert_true(scrape_value(text, BUCKET("A", "1")) == 5);
  assert_true(scrape_value(text, BUCKET("A", "10")) == 5);
  assert_true(scrape_value(text, BUCKET("A", "+Inf")) == 6);
  assert_true(scrape_value(text, SERIES("grpc_server_handling_seconds_count", "A", "unary")) == 6);
  double sum = scrape_value(text, SERIES("grpc_server_handling_seconds_sum", "A", "unary"));
  assert_true(sum > 20.713 && sum < 20.714);
  assert_true(scrape_value(text, HANDLED("A", "OK")) == 3);
  assert_true(scrape_value(text, HANDLED("A", "NotFound")) == 1);
  assert_true(scrape_value(text, HANDLED("A", "Internal")) == 1);
  assert_true(scrape_value(text, HANDLED("A", "Unknown")) == 1);
  assert_true(scrape_value(text, HANDLED("B", "OK")) == 0);
  free(text);
  metrics_destroy(m);
}

static void test_store_operations_have_their_own_finer_histogram(void **state) {
  (void)state;
  metrics *m = make_registry();
  metrics_store_observe(m, METRICS_STORE_GET, 50000);    /* 50 us */
  metrics_store_observe(m, METRICS_STORE_GET, 2000000);  /* 2 ms */
  metrics_store_observe(m, METRICS_STORE_OP_COUNT, 1);   /* ignored */
  char *text = scrape_render(m);
  assert_true(scrape_value(text, "product_store_operation_seconds_bucket{operation=\"get\",le=\"0.0001\"}") == 1);
  assert_true(scrape_value(text, "product_store_operation_seconds_bucket{operation=\"get\",le=\"0.001\"}") == 1);
  assert_true(scrape_value(text, "product_store_operation_seconds_bucket{operation=\"get\",le=\"0.0025\"}") == 2);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"get\"}") == 2);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"create\"}") == 0);
  free(text);
  metrics_destroy(m);
}

#define THREADS 8
#define PER_THREAD 20000

static void *hammer(void *arg) {
  metrics *m = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    metrics_started(m, 1);
    metrics_msg_received(m, 1);
    metrics_handled(m, 1, i % 2 ? RPC_OK : RPC_UNAVAILABLE, 1000);
    metrics_msg_sent(m, 2);
  }
  return NULL;
}

static void test_counts_from_many_threads_sum_exactly(void **state) {
  (void)state;
  metrics *m = make_registry();
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  char *text = scrape_render(m);
  double total = THREADS * PER_THREAD;
  assert_true(scrape_value(text, SERIES("grpc_server_started_total", "B", "unary")) == total);
  assert_true(scrape_value(text, SERIES("grpc_server_msg_received_total", "B", "unary")) == total);
  assert_true(scrape_value(text, HANDLED("B", "OK")) == total / 2);
  assert_true(scrape_value(text, HANDLED("B", "Unavailable")) == total / 2);
  assert_true(scrape_value(text, BUCKET("B", "0.005")) == total);
  assert_true(scrape_value(text, SERIES("grpc_server_msg_sent_total", "Stream", "bidi_stream")) ==
              total);
  free(text);
  metrics_destroy(m);
}

/* ---------------------------------------------------------------- text --- */

static void test_numbers_print_as_the_go_client_prints_them(void **state) {
  (void)state;
  static const struct {
    double v;
    const char *want;
  } cases[] = {
      {0.005, "0.005"}, {0.01, "0.01"},       {2.5, "2.5"},       {10, "10"},
      {0, "0"},         {20000, "20000"},     {123456, "123456"}, {1234567, "1.234567e+06"},
      {1.5e9, "1.5e+09"}, {0.0001, "0.0001"}, {0.00001, "1e-05"}, {-3.25, "-3.25"},
      {0.1, "0.1"},     {1.0 / 3, "0.3333333333333333"},
  };
  char out[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mtext_format_f64(out, sizeof out, cases[i].v);
    assert_string_equal(out, cases[i].want);
  }
  mtext_format_f64(out, sizeof out, INFINITY);
  assert_string_equal(out, "+Inf");
  mtext_format_f64(out, sizeof out, -INFINITY);
  assert_string_equal(out, "-Inf");
  mtext_format_f64(out, sizeof out, NAN);
  assert_string_equal(out, "NaN");
}

static void test_label_values_and_help_are_escaped(void **state) {
  (void)state;
  mtext t;
  mtext_init(&t);
  mtext_family(&t, "x_total", "counter", "a \\ b\nc");
  mlabel l[] = {{"k", "q\"uo\\te\nnl"}, {"e", ""}};
  mtext_sample_u64(&t, "x_total", l, 2, 18446744073709551615ull);
  mtext_sample_f64(&t, "y", NULL, 0, 0.25);
  assert_false(t.oom);
  assert_string_equal(t.buf,
                      "# HELP x_total a \\\\ b\\nc\n"
                      "# TYPE x_total counter\n"
                      "x_total{k=\"q\\\"uo\\\\te\\nnl\",e=\"\"} 18446744073709551615\n"
                      "y 0.25\n");
  mtext_free(&t);
}

/* Every line of a full rendering is a comment or `name{labels} value`. */
static void test_every_rendered_line_is_a_comment_or_a_sample(void **state) {
  (void)state;
  metrics *m = make_registry();
  metrics_handled(m, 0, RPC_OK, 1);
  char *text = scrape_render(m);
  size_t lines = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    assert_non_null(end); /* the text ends with a newline */
    *end = '\0';
    lines++;
    if (line[0] == '#') {
      assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
    } else {
      char *space = strrchr(line, ' ');
      assert_non_null(space);
      char *num_end;
      strtod(space + 1, &num_end);
      assert_true(*num_end == '\0' && num_end != space + 1);
      char *brace = strchr(line, '{');
      if (brace && brace < space) assert_true(space[-1] == '}');
      for (char *p = line; p < (brace && brace < space ? brace : space); p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
    }
    line = end + 1;
  }
  assert_true(lines > 3 * 17 + 100);
  free(text);
  metrics_destroy(m);
}

/* --------------------------------------------------------- timing store --- */

static void test_timing_store_passes_through_and_observes(void **state) {
  (void)state;
  metrics *m = make_registry();
  store *inner = NULL;
  char err[128];
  store_options so = {.pool_size = 1};
  assert_int_equal(store_open("memory", &so, &inner, err, sizeof err), 0);
  store *s = metrics_store_wrap(m, inner);
  assert_non_null(s);
  assert_string_equal(s->ops->name, inner->ops->name);
  arena *a = arena_create(4096);
  product p;
  memset(&p, 0, sizeof p);
  memcpy(p.id, "11111111-1111-4111-8111-111111111111", PRODUCT_ID_LEN + 1);
  p.name = "n";
  p.description = "";
  p.created_us = p.updated_us = 1;
  assert_int_equal(store_create(s, &p), STORE_OK);
  product got;
  assert_int_equal(store_get(s, p.id, a, &got), STORE_OK);
  assert_string_equal(got.name, "n");
  assert_int_equal(store_get(s, "22222222-2222-4222-8222-222222222222", a, &got), STORE_NOT_FOUND);
  assert_int_equal(store_remove(s, p.id), STORE_OK);
  assert_true(store_healthy(s));
  assert_int_equal(store_flush(s), STORE_OK);
  char *text = scrape_render(m);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"create\"}") == 1);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"get\"}") == 2);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"remove\"}") == 1);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"flush\"}") == 1);
  assert_true(scrape_value(text, "product_store_operation_seconds_count{operation=\"list\"}") == 0);
  free(text);
  arena_destroy(a);
  store_destroy(s); /* destroys inner too */
  metrics_destroy(m);
}

/* Tracing alone installs the wrapper without a registry: every operation
 * passes through (and reads no clock for it). */
static void test_store_wrapper_without_a_registry(void **state) {
  (void)state;
  store *inner = NULL;
  char err[128];
  store_options so = {.pool_size = 1};
  assert_int_equal(store_open("memory", &so, &inner, err, sizeof err), 0);
  store *s = metrics_store_wrap(NULL, inner);
  assert_non_null(s);
  arena *a = arena_create(4096);
  product p;
  memset(&p, 0, sizeof p);
  memcpy(p.id, "11111111-1111-4111-8111-111111111111", PRODUCT_ID_LEN + 1);
  p.name = "n";
  p.description = "";
  p.created_us = p.updated_us = 1;
  assert_int_equal(store_create(s, &p), STORE_OK);
  product got;
  assert_int_equal(store_get(s, p.id, a, &got), STORE_OK);
  assert_string_equal(got.name, "n");
  assert_int_equal(store_remove(s, p.id), STORE_OK);
  assert_int_equal(store_get(s, p.id, a, &got), STORE_NOT_FOUND);
  arena_destroy(a);
  store_destroy(s);
}

/* --------------------------------------------------------- interceptor --- */

static rpc_code next_code;
static const char *next_reason;
static bool next_fault;

static void handler_ok(call_ctx *c) {
  c->auth_reason = next_reason;
  if (next_fault) snprintf(c->fault_detail, sizeof c->fault_detail, "boom");
  if (next_code != RPC_OK) {
    call_fail(c, next_code, "failed");
    return;
  }
  Google__Protobuf__Empty *e = call_alloc(c, sizeof(*e));
  google__protobuf__empty__init(e);
  call_reply(c, &e->base);
}

static void run(metrics *m, const method_desc *row, bool with_body, rpc_code code,
                const char *reason, bool fault) {
  static const interceptor *const chain[] = {&interceptor_metrics};
  static const pipeline p = {.chain = chain, .n = 1};
  next_code = code;
  next_reason = reason;
  next_fault = fault;
  service_env env = {.metrics = m};
  call_ctx c;
  memset(&c, 0, sizeof c);
  c.arena = arena_create(1024);
  c.env = &env;
  c.method = row;
  c.start_ns = clock_mono_ns();
  static const uint8_t body[1];
  if (with_body) c.body = body;
  pipeline_run(&p, &c);
  assert_int_equal(c.code, code);
  arena_destroy(c.arena);
}

static void test_interceptor_counts_like_go_grpc_prometheus(void **state) {
  (void)state;
  metrics *m = make_registry();
  run(m, &row_a, true, RPC_OK, NULL, false);
  run(m, &row_a, true, RPC_NOT_FOUND, NULL, false);
  run(m, &row_a, false, RPC_INVALID_ARGUMENT, NULL, false);  /* no request message */
  run(m, &row_a, true, RPC_UNAUTHENTICATED, "expired", false);
  run(m, &row_a, true, RPC_PERMISSION_DENIED, "missing_role", false);
  run(m, &row_a, true, RPC_OK, "bad_signature", false);       /* public: not a refusal */
  run(m, &row_a, true, RPC_INTERNAL, NULL, true);
  run(m, &row_a, true, RPC_INTERNAL, NULL, false);              /* no detail: not counted */
  run(m, &row_other, true, RPC_OK, NULL, false);                /* not in the registry */
  char *text = scrape_render(m);
  assert_true(scrape_value(text, SERIES("grpc_server_started_total", "A", "unary")) == 8);
  assert_true(scrape_value(text, SERIES("grpc_server_msg_received_total", "A", "unary")) == 7);
  assert_true(scrape_value(text, SERIES("grpc_server_msg_sent_total", "A", "unary")) == 2);
  assert_true(scrape_value(text, HANDLED("A", "OK")) == 2);
  assert_true(scrape_value(text, HANDLED("A", "NotFound")) == 1);
  assert_true(scrape_value(text, HANDLED("A", "InvalidArgument")) == 1);
  assert_true(scrape_value(text, HANDLED("A", "Unauthenticated")) == 1);
  assert_true(scrape_value(text, HANDLED("A", "PermissionDenied")) == 1);
  assert_true(scrape_value(text, HANDLED("A", "Internal")) == 2);
  assert_true(scrape_value(text, SERIES("grpc_server_handling_seconds_count", "A", "unary")) == 8);
  assert_true(scrape_value(text, SERIES("product_recovered_faults_total", "A", "unary")) == 1);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"expired\"}") == 1);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"missing_role\"}") == 1);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"other\"}") == 0);
  free(text);
  metrics_destroy(m);
}

static void test_interceptor_without_a_registry_only_passes_the_call_on(void **state) {
  (void)state;
  run(NULL, &row_a, true, RPC_OK, NULL, false);
  run(NULL, &row_a, true, RPC_UNAUTHENTICATED, "expired", false);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_series_exists_at_zero_with_its_type),
      cmocka_unit_test(test_duplicate_reasons_are_merged_and_unknown_ones_count_as_other),
      cmocka_unit_test(test_method_lookup_by_row_and_by_name),
      cmocka_unit_test(test_a_method_without_a_name_is_refused),
      cmocka_unit_test(test_histogram_buckets_use_le_and_render_cumulatively),
      cmocka_unit_test(test_store_operations_have_their_own_finer_histogram),
      cmocka_unit_test(test_store_wrapper_without_a_registry),
      cmocka_unit_test(test_counts_from_many_threads_sum_exactly),
      cmocka_unit_test(test_numbers_print_as_the_go_client_prints_them),
      cmocka_unit_test(test_label_values_and_help_are_escaped),
      cmocka_unit_test(test_every_rendered_line_is_a_comment_or_a_sample),
      cmocka_unit_test(test_timing_store_passes_through_and_observes),
      cmocka_unit_test(test_interceptor_counts_like_go_grpc_prometheus),
      cmocka_unit_test(test_interceptor_without_a_registry_only_passes_the_call_on),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
