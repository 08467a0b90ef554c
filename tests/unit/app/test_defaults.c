/* Tests for the default tables of src/app/ (pipeline_default.c,
 * metrics_default.c): the chain's order, and a registry that covers every
 * row of the method table, both reflection streams and every reason the
 * auth interceptor can record, each a series at 0 from the start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "app/defaults.h"
#include "interceptors/interceptors.h"
#include "service/methods.h"
#include "support/metrics_scrape.h"

static void test_the_chain_is_recovery_logging_tracing_metrics_rate_limit_auth(void **state) {
  (void)state;
  const pipeline *p = pipeline_default();
  assert_non_null(p);
  assert_int_equal(p->n, 6);
  assert_ptr_equal(p->chain[0], &interceptor_recovery);
  assert_ptr_equal(p->chain[1], &interceptor_logging);
  assert_ptr_equal(p->chain[2], &interceptor_tracing);
  assert_ptr_equal(p->chain[3], &interceptor_metrics);
  /* before auth: a refused call costs no HMAC and no store work */
  assert_ptr_equal(p->chain[4], &interceptor_rate_limit);
  assert_ptr_equal(p->chain[5], &interceptor_auth);
}

static void test_default_registry_covers_the_method_table_and_reflection(void **state) {
  (void)state;
  metrics *m = NULL;
  assert_int_equal(metrics_create_default(&m), 0);
  for (size_t i = 0; i < product_methods_count; i++)
    assert_int_equal(metrics_method_of(m, product_methods[i]), product_methods[i]->index);
  for (size_t i = 0; i < service_methods_count; i++)
    assert_true(metrics_method_of(m, service_methods[i]) >= 0);
  assert_true(metrics_method_find(m, "grpc.reflection.v1.ServerReflection",
                                  "ServerReflectionInfo") >= 0);
  assert_true(metrics_method_find(m, "grpc.reflection.v1alpha.ServerReflection",
                                  "ServerReflectionInfo") >= 0);
  char *text = scrape_render(m);
  assert_true(scrape_value(text,
                       "grpc_server_handled_total{grpc_code=\"Unauthenticated\","
                       "grpc_method=\"DeleteProduct\",grpc_service=\"product.ProductService\","
                       "grpc_type=\"unary\"}") == 0);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"bad_signature\"}") == 0);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"duplicate_authorization\"}") ==
              0);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"unknown_kid\"}") == 0);
  assert_true(scrape_value(text, "product_auth_rejections_total{reason=\"revoked\"}") == 0);
  assert_true(scrape_has_line(text, "# TYPE product_jwt_keys gauge"));
  assert_true(scrape_value(text, "product_jwt_keys") == 0);
  free(text);
  metrics_set_jwt_keys(m, 3); /* what a key load reports */
  text = scrape_render(m);
  assert_true(scrape_value(text, "product_jwt_keys") == 3);
  free(text);
  metrics_destroy(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_the_chain_is_recovery_logging_tracing_metrics_rate_limit_auth),
      cmocka_unit_test(test_default_registry_covers_the_method_table_and_reflection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
