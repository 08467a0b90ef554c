/* Tests for src/transport/descriptors.c: the embedded descriptor set indexes
 * every service and symbol reflection must resolve, each file's closure holds
 * exactly the file and its transitive imports (as protoc wrote them), and a
 * malformed or incomplete set is refused without leaking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "transport/descriptors.h"

extern const unsigned char product_descriptor_set[];
extern const size_t product_descriptor_set_len;

static const descriptors *builtin(void) {
  const descriptors *d = descriptors_builtin();
  assert_non_null(d);
  return d;
}

static const char *file_name(const descriptors *d, int file) {
  const ProtobufCBinaryData *closure;
  assert_true(descriptors_closure(d, file, &closure) >= 1);
  Google__Protobuf__FileDescriptorProto *f =
      google__protobuf__file_descriptor_proto__unpack(NULL, closure[0].len, closure[0].data);
  assert_non_null(f);
  static char name[128];
  snprintf(name, sizeof name, "%s", f->name);
  google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
  return name;
}

static void test_services_are_the_four_served_ones(void **state) {
  (void)state;
  const descriptors *d = builtin();
  assert_int_equal(descriptors_service_count(d), 4);
  const char *want[] = {"product.ProductService", "grpc.health.v1.Health",
                        "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection"};
  for (size_t i = 0; i < 4; i++) {
    bool found = false;
    for (size_t k = 0; k < 4; k++) found |= strcmp(descriptors_service_name(d, k), want[i]) == 0;
    assert_true(found);
  }
  assert_null(descriptors_service_name(d, 4));
}

static void test_symbols_of_every_kind_name_their_file(void **state) {
  (void)state;
  const descriptors *d = builtin();
  static const struct {
    const char *symbol, *file;
  } cases[] = {
      {"product.ProductService", "product.proto"},
      {"product.ProductService.DeleteProduct", "product.proto"},
      {"product.CreateProductRequest", "product.proto"},
      {".product.CreateProductRequest", "product.proto"},
      {"product.UpdateProductRequest.update_mask", "product.proto"},
      {"google.protobuf.Empty", "google/protobuf/empty.proto"},
      {"google.protobuf.Timestamp.nanos", "google/protobuf/timestamp.proto"},
      {"grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"},
      {"grpc.health.v1.HealthCheckResponse.NOT_SERVING", "grpc/health/v1/health.proto"},
      {"grpc.reflection.v1.ServerReflectionRequest", "grpc/reflection/v1/reflection.proto"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int f = descriptors_find_symbol(d, cases[i].symbol);
    assert_true(f >= 0);
    assert_string_equal(file_name(d, f), cases[i].file);
  }
  assert_true(descriptors_is_message(d, "product.Product"));
  assert_false(descriptors_is_message(d, "product.ProductService"));
  assert_false(descriptors_is_message(d, "product.Product.name"));
}

static void test_unknown_names_are_not_found(void **state) {
  (void)state;
  const descriptors *d = builtin();
  const char *unknown[] = {"", ".", "product", "product.", "Product", "product.product",
                           "product.ProductService.Nope", "product.Product.name.x", NULL};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    assert_int_equal(descriptors_find_symbol(d, unknown[i]), -1);
  assert_int_equal(descriptors_find_file(d, "product"), -1);
  assert_int_equal(descriptors_find_file(d, NULL), -1);
  const ProtobufCBinaryData *closure;
  assert_int_equal(descriptors_closure(d, -1, &closure), 0);
  assert_int_equal(descriptors_closure(d, 1000, &closure), 0);
}

static void test_closure_is_the_file_then_each_import_once(void **state) {
  (void)state;
  const descriptors *d = builtin();
  int f = descriptors_find_file(d, "product.proto");
  assert_true(f >= 0);
  const ProtobufCBinaryData *closure;
  size_t n = descriptors_closure(d, f, &closure);
  assert_int_equal(n, 4);
  const char *want[] = {"product.proto", "google/protobuf/timestamp.proto",
                        "google/protobuf/empty.proto", "google/protobuf/field_mask.proto"};
  for (size_t i = 0; i < n; i++) {
    Google__Protobuf__FileDescriptorProto *fd =
        google__protobuf__file_descriptor_proto__unpack(NULL, closure[i].len, closure[i].data);
    assert_non_null(fd);
    assert_string_equal(fd->name, want[i]);
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  }
  /* A file without imports is alone. */
  n = descriptors_closure(d, descriptors_find_file(d, "google/protobuf/empty.proto"), &closure);
  assert_int_equal(n, 1);
}

static void test_a_copy_of_the_set_indexes_the_same(void **state) {
  (void)state;
  descriptors *d = NULL;
  assert_int_equal(descriptors_create(product_descriptor_set, product_descriptor_set_len, &d), 0);
  assert_int_equal(descriptors_find_symbol(d, "product.Product"),
                   descriptors_find_symbol(builtin(), "product.Product"));
  descriptors_destroy(d);
}

static void test_malformed_or_incomplete_sets_are_refused(void **state) {
  (void)state;
  descriptors *d = (descriptors *)1;
  assert_int_not_equal(descriptors_create(NULL, 0, &d), 0);
  assert_null(d);
  static const uint8_t wrong_tag[] = {0x12, 0x00};
  assert_int_not_equal(descriptors_create(wrong_tag, sizeof wrong_tag, &d), 0);
  static const uint8_t too_long[] = {0x0a, 0x05, 0x0a};
  assert_int_not_equal(descriptors_create(too_long, sizeof too_long, &d), 0);
  static const uint8_t not_a_file[] = {0x0a, 0x02, 0xff, 0xff};
  assert_int_not_equal(descriptors_create(not_a_file, sizeof not_a_file, &d), 0);
  /* Truncated anywhere: refused, never a crash. */
  for (size_t cut = 1; cut < product_descriptor_set_len; cut += 97) {
    descriptors *t = NULL;
    if (descriptors_create(product_descriptor_set, cut, &t) == 0) descriptors_destroy(t);
  }
  /* product.proto alone lacks its imports. */
  const descriptors *b = builtin();
  const ProtobufCBinaryData *closure;
  descriptors_closure(b, descriptors_find_file(b, "product.proto"), &closure);
  size_t len = closure[0].len;
  uint8_t *only = malloc(len + 8);
  assert_non_null(only);
  size_t pos = 0;
  only[pos++] = 0x0a;
  for (size_t v = len; ; v >>= 7) {
    only[pos++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    if (v <= 0x7f) break;
  }
  memcpy(only + pos, closure[0].data, len);
  assert_int_not_equal(descriptors_create(only, pos + len, &d), 0);
  free(only);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_services_are_the_four_served_ones),
      cmocka_unit_test(test_symbols_of_every_kind_name_their_file),
      cmocka_unit_test(test_unknown_names_are_not_found),
      cmocka_unit_test(test_closure_is_the_file_then_each_import_once),
      cmocka_unit_test(test_a_copy_of_the_set_indexes_the_same),
      cmocka_unit_test(test_malformed_or_incomplete_sets_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
