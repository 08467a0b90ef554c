/* Tests for src/core/wire_check.c: UTF-8 and NUL checks on string fields
 * at every nesting level, malformed wire bytes, unknown fields, depth. The
 * bytes are written by hand so that each case is exactly what it says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "product.pb-c.h"
#include "core/wire_check.h"

/* ------------------------------------------------------------- encoder --- */

typedef struct wbuf {
  uint8_t b[4096];
  size_t n;
} wbuf;

static void put_byte(wbuf *w, uint8_t v) {
  assert_true(w->n < sizeof w->b);
  w->b[w->n++] = v;
}

static void put_bytes(wbuf *w, const void *p, size_t n) {
  assert_true(w->n + n <= sizeof w->b);
  memcpy(w->b + w->n, p, n);
  w->n += n;
}

static void put_varint(wbuf *w, uint64_t v) {
  while (v >= 0x80) {
    put_byte(w, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  put_byte(w, (uint8_t)v);
}

static void put_tag(wbuf *w, uint32_t field, unsigned wire) {
  put_varint(w, ((uint64_t)field << 3) | wire);
}

static void put_len(wbuf *w, uint32_t field, const void *p, size_t n) {
  put_tag(w, field, 2);
  put_varint(w, n);
  put_bytes(w, p, n);
}

static void put_str(wbuf *w, uint32_t field, const char *s) { put_len(w, field, s, strlen(s)); }

static char g_err[256];

static int check(const ProtobufCMessageDescriptor *d, const wbuf *w) {
  g_err[0] = '\0';
  return wire_check(d, w->b, w->n, g_err, sizeof g_err);
}

#define CREATE (&product__create_product_request__descriptor)
#define UPDATE (&product__update_product_request__descriptor)
#define LIST_RESP (&product__list_products_response__descriptor)

static void expect_ok(const ProtobufCMessageDescriptor *d, const wbuf *w) {
  if (check(d, w) != 0) fail_msg("refused: %s", g_err);
}

static void expect_refused(const ProtobufCMessageDescriptor *d, const wbuf *w, const char *want) {
  if (check(d, w) == 0) fail_msg("accepted, wanted '%s'", want);
  if (!strstr(g_err, want)) fail_msg("error '%s' lacks '%s'", g_err, want);
  assert_null(strchr(g_err, '\n'));
}

/* A CreateProductRequest whose name is the given bytes. */
static void name_bytes(wbuf *w, const char *bytes, size_t n) {
  memset(w, 0, sizeof *w);
  put_len(w, 1, bytes, n);
}

/* ----------------------------------------------------------------- UTF-8 --- */

static void test_valid_utf8_boundaries_pass(void **state) {
  (void)state;
  static const char *ok[] = {
      "",                  "plain ascii",       "\x7f",              "\xc2\x80",
      "\xdf\xbf",          "\xe0\xa0\x80",      "\xed\x9f\xbf",      "\xee\x80\x80",
      "\xef\xbf\xbf",      "\xf0\x90\x80\x80",  "\xf4\x8f\xbf\xbf",  "caf\xc3\xa9",
      "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    assert_true(wire_check_utf8((const uint8_t *)ok[i], strlen(ok[i])));
    wbuf w;
    name_bytes(&w, ok[i], strlen(ok[i]));
    expect_ok(CREATE, &w);
  }
}

static void test_invalid_utf8_is_refused_with_the_field_name(void **state) {
  (void)state;
  static const struct {
    const char *b;
    const char *why;
  } bad[] = {
      {"\x80", "lone continuation byte"},
      {"\xbf", "lone continuation byte"},
      {"\xc0\x80", "overlong NUL"},
      {"\xc1\xbf", "overlong 2-byte"},
      {"\xe0\x80\x80", "overlong 3-byte"},
      {"\xe0\x9f\xbf", "overlong 3-byte (U+07FF)"},
      {"\xf0\x80\x80\x80", "overlong 4-byte"},
      {"\xf0\x8f\xbf\xbf", "overlong 4-byte (U+FFFF)"},
      {"\xed\xa0\x80", "surrogate U+D800"},
      {"\xed\xbf\xbf", "surrogate U+DFFF"},
      {"\xf4\x90\x80\x80", "above U+10FFFF"},
      {"\xf5\x80\x80\x80", "lead byte F5"},
      {"\xff", "byte FF"},
      {"\xfe", "byte FE"},
      {"\xe2\x82", "truncated 3-byte"},
      {"ab\xf0\x9f\x98", "truncated 4-byte at the end"},
      {"\xc3(", "bad continuation"},
      {"\xe2\x28\xa1", "bad second byte"},
      {"\xe2\x82\x28", "bad third byte"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = strlen(bad[i].b);
    if (wire_check_utf8((const uint8_t *)bad[i].b, n)) fail_msg("utf8 accepted: %s", bad[i].why);
    wbuf w;
    name_bytes(&w, bad[i].b, n);
    expect_refused(CREATE, &w, "field 'name' is not valid UTF-8");
  }
}

static void test_nul_byte_in_a_string_is_refused(void **state) {
  (void)state;
  wbuf w;
  name_bytes(&w, "ab\0cd", 5);
  expect_refused(CREATE, &w, "field 'name' contains a NUL byte at offset 2");
  /* Why: protobuf-c would hand the handler "ab" and drop the rest. */
  Product__CreateProductRequest *req = product__create_product_request__unpack(NULL, w.n, w.b);
  assert_non_null(req);
  assert_string_equal(req->name, "ab");
  product__create_product_request__free_unpacked(req, NULL);
  name_bytes(&w, "\0", 1);
  expect_refused(CREATE, &w, "field 'name' contains a NUL byte at offset 0");
}

static void test_every_string_field_of_a_request_is_checked(void **state) {
  (void)state;
  wbuf w = {0};
  put_str(&w, 1, "ok");
  put_len(&w, 2, "\xff", 1);
  expect_refused(CREATE, &w, "field 'description'");
  memset(&w, 0, sizeof w);
  put_str(&w, 1, "id");
  expect_ok(&product__get_product_request__descriptor, &w);
  memset(&w, 0, sizeof w);
  put_len(&w, 1, "\xed\xa0\x80", 3);
  expect_refused(&product__delete_product_request__descriptor, &w, "field 'id'");
  memset(&w, 0, sizeof w);
  put_tag(&w, 1, 0);
  put_varint(&w, 10);
  put_len(&w, 2, "tok\xc0\xaf", 5);
  expect_refused(&product__list_products_request__descriptor, &w, "field 'page_token'");
  memset(&w, 0, sizeof w);
  put_len(&w, 3, "price > \xe0\x80\x80", 11);
  expect_refused(&product__list_products_request__descriptor, &w, "field 'filter'");
}

/* A NUL byte in the filter names its byte offset, as every filter error
 * does, wherever it is: in a string, between tokens, first or last. */
static void test_nul_byte_in_the_filter_names_its_offset(void **state) {
  (void)state;
  const struct {
    const char *f;
    size_t n;
    const char *want;
  } cases[] = {
      {"name = \"ab\0c\"", 13, "field 'filter' contains a NUL byte at offset 10"},
      {"price > 1\0", 10, "field 'filter' contains a NUL byte at offset 9"},
      {"\0name = \"x\"", 11, "field 'filter' contains a NUL byte at offset 0"},
      {"a\0b\0", 4, "field 'filter' contains a NUL byte at offset 1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    wbuf w = {0};
    put_len(&w, 3, cases[i].f, cases[i].n);
    expect_refused(&product__list_products_request__descriptor, &w, cases[i].want);
  }
}

static void test_each_element_of_a_repeated_string_is_checked(void **state) {
  (void)state;
  wbuf w = {0};
  put_str(&w, 1, "name");
  put_str(&w, 4, "first");
  put_str(&w, 4, "second");
  expect_ok(CREATE, &w);
  put_len(&w, 4, "th\xedird", 6);
  expect_refused(CREATE, &w, "field 'categories' is not valid UTF-8");
  memset(&w, 0, sizeof w);
  put_str(&w, 4, "a");
  put_len(&w, 4, "b\0", 2);
  put_str(&w, 4, "c");
  expect_refused(CREATE, &w, "field 'categories' contains a NUL byte at offset 1");
}

static void test_field_mask_paths_are_checked(void **state) {
  (void)state;
  wbuf mask = {0};
  put_str(&mask, 1, "name");
  put_str(&mask, 1, "price");
  wbuf w = {0};
  put_str(&w, 1, "some-id");
  put_len(&w, 6, mask.b, mask.n);
  expect_ok(UPDATE, &w);
  put_len(&mask, 1, "desc\x80", 5);
  memset(&w, 0, sizeof w);
  put_str(&w, 1, "some-id");
  put_len(&w, 6, mask.b, mask.n);
  expect_refused(UPDATE, &w, "field 'update_mask.paths' is not valid UTF-8");
  memset(&mask, 0, sizeof mask);
  put_len(&mask, 1, "na\0me", 5);
  memset(&w, 0, sizeof w);
  put_len(&w, 6, mask.b, mask.n);
  expect_refused(UPDATE, &w, "field 'update_mask.paths' contains a NUL byte at offset 2");
}

static void test_strings_two_levels_down_are_checked(void **state) {
  (void)state;
  /* ListProductsResponse.products[].name and created_at (a Timestamp). */
  wbuf ts = {0};
  put_tag(&ts, 1, 0);
  put_varint(&ts, 1700000000);
  wbuf prod = {0};
  put_str(&prod, 1, "id-1");
  put_str(&prod, 2, "good");
  put_len(&prod, 6, ts.b, ts.n);
  wbuf w = {0};
  put_len(&w, 1, prod.b, prod.n);
  put_str(&w, 2, "next");
  expect_ok(LIST_RESP, &w);

  wbuf bad = {0};
  put_str(&bad, 1, "id-2");
  put_len(&bad, 5, "\xf4\x90\x80\x80", 4);
  put_len(&w, 1, bad.b, bad.n);
  expect_refused(LIST_RESP, &w, "field 'products.categories' is not valid UTF-8");
}

static void test_packed_request_round_trip_passes(void **state) {
  (void)state;
  Product__CreateProductRequest req = PRODUCT__CREATE_PRODUCT_REQUEST__INIT;
  char *cats[] = {"k\xc3\xbc" "che", "\xe6\x97\xa5\xe6\x9c\xac"};
  req.name = "Gr\xc3\xbc\xc3\x9f" "e \xf0\x9f\x98\x80";
  req.description = "";
  req.price = 9.5;
  req.n_categories = 2;
  req.categories = cats;
  wbuf w = {0};
  w.n = product__create_product_request__pack(&req, w.b);
  expect_ok(CREATE, &w);
}

/* -------------------------------------------------------- malformed bytes --- */

static void test_truncated_varints_are_refused(void **state) {
  (void)state;
  wbuf w = {0};
  put_byte(&w, 0x80); /* a key that never ends */
  expect_refused(CREATE, &w, "malformed");
  memset(&w, 0, sizeof w);
  put_tag(&w, 9, 0);
  put_byte(&w, 0xff); /* varint value cut off */
  expect_refused(CREATE, &w, "truncated");
  memset(&w, 0, sizeof w);
  put_tag(&w, 9, 0);
  for (int i = 0; i < 10; i++) put_byte(&w, 0xff); /* 11 bytes: too long */
  put_byte(&w, 0x01);
  expect_refused(CREATE, &w, "malformed");
  memset(&w, 0, sizeof w);
  put_tag(&w, 9, 0);
  for (int i = 0; i < 9; i++) put_byte(&w, 0xff); /* 10 bytes: the maximum */
  put_byte(&w, 0x01);
  expect_ok(CREATE, &w);
  memset(&w, 0, sizeof w);
  put_tag(&w, 1, 2);
  put_byte(&w, 0x85); /* a length that never ends */
  expect_refused(CREATE, &w, "length");
}

static void test_lengths_past_the_end_are_refused(void **state) {
  (void)state;
  wbuf w = {0};
  put_tag(&w, 1, 2);
  put_varint(&w, 10);
  put_bytes(&w, "abc", 3);
  expect_refused(CREATE, &w, "length past the end");
  memset(&w, 0, sizeof w);
  put_tag(&w, 1, 2);
  put_varint(&w, UINT64_MAX); /* would wrap a careless pos + len */
  put_bytes(&w, "abc", 3);
  expect_refused(CREATE, &w, "length past the end");
  memset(&w, 0, sizeof w);
  put_tag(&w, 99, 2); /* unknown fields too */
  put_varint(&w, 4);
  put_bytes(&w, "ab", 2);
  expect_refused(CREATE, &w, "length past the end");
  /* a nested message whose inner length overruns its own bounds */
  wbuf mask = {0};
  put_tag(&mask, 1, 2);
  put_varint(&mask, 5);
  put_bytes(&mask, "ab", 2);
  memset(&w, 0, sizeof w);
  put_len(&w, 6, mask.b, mask.n);
  put_str(&w, 1, "xyz"); /* bytes that follow the mask must not be borrowed */
  expect_refused(UPDATE, &w, "length past the end");
}

static void test_truncated_fixed_fields_are_refused(void **state) {
  (void)state;
  wbuf w = {0};
  put_tag(&w, 3, 1); /* price: double */
  put_bytes(&w, "\0\0\0\0\0\0\0", 7);
  expect_refused(CREATE, &w, "truncated 64-bit");
  memset(&w, 0, sizeof w);
  put_tag(&w, 77, 5);
  put_bytes(&w, "\0\0\0", 3);
  expect_refused(CREATE, &w, "truncated 32-bit");
}

static void test_unknown_fields_are_skipped_by_wire_type(void **state) {
  (void)state;
  wbuf w = {0};
  put_tag(&w, 50, 0);
  put_varint(&w, 300);
  put_tag(&w, 51, 1);
  put_bytes(&w, "12345678", 8);
  put_len(&w, 52, "\xff\xfe\0 not a string field", 22); /* unknown: opaque bytes */
  put_tag(&w, 53, 5);
  put_bytes(&w, "1234", 4);
  put_tag(&w, 536870911, 0); /* the largest field number */
  put_varint(&w, 1);
  put_str(&w, 1, "name after unknowns");
  expect_ok(CREATE, &w);
  /* and a bad known field after them is still found */
  put_len(&w, 2, "\xc0\x80", 2);
  expect_refused(CREATE, &w, "field 'description'");
}

static void test_bad_keys_are_refused(void **state) {
  (void)state;
  wbuf w = {0};
  put_tag(&w, 0, 0); /* field number 0 */
  put_varint(&w, 1);
  expect_refused(CREATE, &w, "field number");
  memset(&w, 0, sizeof w);
  put_varint(&w, (uint64_t)536870912 << 3); /* 2^29: too large */
  put_varint(&w, 1);
  expect_refused(CREATE, &w, "field number");
  for (unsigned wire = 3; wire <= 7; wire++) {
    if (wire == 5) continue;
    memset(&w, 0, sizeof w);
    put_tag(&w, 60, wire);
    put_bytes(&w, "\0\0\0\0\0\0\0\0", 8);
    expect_refused(CREATE, &w, "wire type");
  }
}

static void test_string_field_with_a_non_length_wire_type_is_refused(void **state) {
  (void)state;
  wbuf w = {0};
  put_tag(&w, 1, 0);
  put_varint(&w, 5);
  expect_refused(CREATE, &w, "field 'name' has the wrong wire type");
  memset(&w, 0, sizeof w);
  put_tag(&w, 6, 5);
  put_bytes(&w, "\0\0\0\0", 4);
  expect_refused(UPDATE, &w, "field 'update_mask' has the wrong wire type");
}

static void test_empty_message_and_null_err_are_fine(void **state) {
  (void)state;
  assert_int_equal(wire_check(CREATE, NULL, 0, g_err, sizeof g_err), 0);
  const uint8_t bad[] = {0x0a, 0x01, 0xff};
  assert_int_not_equal(wire_check(CREATE, bad, sizeof bad, NULL, 0), 0);
  assert_int_not_equal(wire_check(CREATE, NULL, 5, g_err, sizeof g_err), 0);
  /* a tiny err buffer is still terminated */
  char tiny[8];
  assert_int_not_equal(wire_check(CREATE, bad, sizeof bad, tiny, sizeof tiny), 0);
  assert_true(strlen(tiny) < sizeof tiny);
}

/* ------------------------------------------------------------------ depth --- */

/* A message that contains itself: field 1 "child" (message), field 2 "s"
 * (string). The generated protos have no recursion, so it is built here. */
extern const ProtobufCMessageDescriptor node_descriptor;
static const ProtobufCFieldDescriptor node_fields[] = {
    {"child", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0, 0, &node_descriptor, NULL,
     0, 0, NULL, NULL},
    {"s", 2, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING, 0, 0, NULL, NULL, 0, 0, NULL, NULL},
};
static const unsigned node_by_name[] = {0, 1};
static const ProtobufCIntRange node_ranges[] = {{1, 0}, {0, 2}};
const ProtobufCMessageDescriptor node_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.Node", "Node", "Test__Node", "test",
    sizeof(ProtobufCMessage), 2, node_fields, node_by_name, 1, node_ranges, NULL, NULL, NULL, NULL};

/* `levels` nested children, the innermost holding string s. */
static void nest(wbuf *out, int levels, const char *s, size_t n) {
  wbuf cur = {0};
  put_len(&cur, 2, s, n);
  for (int i = 0; i < levels; i++) {
    wbuf next = {0};
    put_len(&next, 1, cur.b, cur.n);
    cur = next;
  }
  *out = cur;
}

static void test_nesting_is_limited(void **state) {
  (void)state;
  wbuf w;
  nest(&w, WIRE_CHECK_MAX_DEPTH, "deep", 4);
  expect_ok(&node_descriptor, &w);
  nest(&w, WIRE_CHECK_MAX_DEPTH + 1, "deep", 4);
  expect_refused(&node_descriptor, &w, "nested too deeply");
  nest(&w, 5, "\xed\xb0\x80", 3);
  expect_refused(&node_descriptor, &w, "field 'child.child.child.child.child.s' is not valid UTF-8");
}

/* Field counts are bounded so that protobuf-c cannot be made to allocate
 * per tiny field without limit. */
static void test_unknown_field_count_is_limited(void **state) {
  (void)state;
  static wbuf w; /* 64 or 65 unknown varint fields: 2 bytes each */
  w.n = 0;
  for (int i = 0; i < 64; i++) {
    put_tag(&w, 15, 0);
    put_varint(&w, 0);
  }
  assert_int_equal(check(&product__get_product_request__descriptor, &w), 0);
  put_tag(&w, 15, 0);
  put_varint(&w, 0);
  assert_int_not_equal(check(&product__get_product_request__descriptor, &w), 0);
  assert_non_null(strstr(g_err, "too many unknown fields"));
}

static void test_total_field_count_is_limited(void **state) {
  (void)state;
  uint8_t *b = malloc(3 * 4097);
  size_t n = 0;
  for (int i = 0; i < 4097; i++) { /* repeated categories = "" (known field) */
    b[n++] = (4 << 3) | 2;
    b[n++] = 0;
  }
  char err[128];
  assert_int_equal(wire_check(&product__create_product_request__descriptor, b, 2 * 4096, err,
                              sizeof err), 0);
  assert_int_not_equal(wire_check(&product__create_product_request__descriptor, b, n, err,
                                  sizeof err), 0);
  assert_non_null(strstr(err, "too many fields"));
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_utf8_boundaries_pass),
      cmocka_unit_test(test_invalid_utf8_is_refused_with_the_field_name),
      cmocka_unit_test(test_nul_byte_in_a_string_is_refused),
      cmocka_unit_test(test_every_string_field_of_a_request_is_checked),
      cmocka_unit_test(test_nul_byte_in_the_filter_names_its_offset),
      cmocka_unit_test(test_each_element_of_a_repeated_string_is_checked),
      cmocka_unit_test(test_field_mask_paths_are_checked),
      cmocka_unit_test(test_strings_two_levels_down_are_checked),
      cmocka_unit_test(test_packed_request_round_trip_passes),
      cmocka_unit_test(test_truncated_varints_are_refused),
      cmocka_unit_test(test_lengths_past_the_end_are_refused),
      cmocka_unit_test(test_truncated_fixed_fields_are_refused),
      cmocka_unit_test(test_unknown_fields_are_skipped_by_wire_type),
      cmocka_unit_test(test_bad_keys_are_refused),
      cmocka_unit_test(test_string_field_with_a_non_length_wire_type_is_refused),
      cmocka_unit_test(test_empty_message_and_null_err_are_fine),
      cmocka_unit_test(test_nesting_is_limited),
      cmocka_unit_test(test_unknown_field_count_is_limited),
      cmocka_unit_test(test_total_field_count_is_limited),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
