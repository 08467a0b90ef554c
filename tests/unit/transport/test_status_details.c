/* Tests for transport/status_details.c: the hand-written google.rpc.Status
 * + RetryInfo bytes are exactly what protoc-c packs from proto/google/rpc/
 * for the same values (codes, messages of every length the server can
 * write, waits across the varint and seconds/nanos boundaries), decode back
 * with protoc-c, and a buffer too small is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "google/rpc/retry_info.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "transport/status_details.h"

/* The reference: what the server sent before, packed with protoc-c. */
static size_t packed_by_protoc_c(rpc_code code, const char *message, int64_t retry_ms,
                                 uint8_t *out) {
  Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
  delay.seconds = retry_ms / 1000;
  delay.nanos = (int32_t)(retry_ms % 1000) * 1000000;
  Google__Rpc__RetryInfo info = GOOGLE__RPC__RETRY_INFO__INIT;
  info.retry_delay = &delay;
  uint8_t info_buf[64];
  size_t info_len = google__rpc__retry_info__get_packed_size(&info);
  assert_true(info_len <= sizeof info_buf);
  google__rpc__retry_info__pack(&info, info_buf);
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
  any.value.data = info_buf;
  any.value.len = info_len;
  Google__Protobuf__Any *details[1] = {&any};
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  st.code = (int32_t)code;
  st.message = (char *)message;
  st.n_details = 1;
  st.details = details;
  size_t len = google__rpc__status__get_packed_size(&st);
  assert_true(len <= STATUS_DETAILS_MAX);
  return google__rpc__status__pack(&st, out);
}

static void check_same(rpc_code code, const char *message, int64_t retry_ms) {
  uint8_t want[STATUS_DETAILS_MAX], got[STATUS_DETAILS_MAX];
  size_t want_len = packed_by_protoc_c(code, message, retry_ms, want);
  size_t got_len = status_details_retry(code, message, retry_ms, got, sizeof got);
  assert_int_equal(got_len, want_len);
  assert_memory_equal(got, want, want_len);
}

static void test_same_bytes_as_protoc_c(void **state) {
  (void)state;
  static const int64_t waits[] = {1,    2,    127,  128,   999,    1000,    1001,
                                  1999, 2000, 4321, 16383, 16384, 86400000, INT32_MAX,
                                  (int64_t)INT32_MAX * 1000 + 999};
  static const rpc_code codes[] = {RPC_RESOURCE_EXHAUSTED, RPC_UNAVAILABLE, RPC_OK,
                                   RPC_UNAUTHENTICATED};
  char message[256];
  for (size_t w = 0; w < sizeof waits / sizeof waits[0]; w++)
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++)
      for (size_t n = 0; n < sizeof message; n++) { /* 0..255 bytes: 1- and 2-byte lengths */
        memset(message, 'm', n);
        message[n] = '\0';
        check_same(codes[k], message, waits[w]);
      }
  check_same(RPC_RESOURCE_EXHAUSTED, "rate limit exceeded for read; retry in 5 ms", 5);
  check_same(RPC_RESOURCE_EXHAUSTED, "too many failed authentications; retry in 100 ms", 100);
}

static void test_decodes_back(void **state) {
  (void)state;
  uint8_t buf[STATUS_DETAILS_MAX];
  const char *msg = "too many failed authentications; retry in 1500 ms";
  size_t len = status_details_retry(RPC_RESOURCE_EXHAUSTED, msg, 1500, buf, sizeof buf);
  assert_true(len > 0);
  Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, buf);
  assert_non_null(st);
  assert_int_equal(st->code, RPC_RESOURCE_EXHAUSTED);
  assert_string_equal(st->message, msg);
  assert_int_equal(st->n_details, 1);
  assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
  Google__Rpc__RetryInfo *info =
      google__rpc__retry_info__unpack(NULL, st->details[0]->value.len, st->details[0]->value.data);
  assert_non_null(info);
  assert_non_null(info->retry_delay);
  assert_int_equal(info->retry_delay->seconds, 1);
  assert_int_equal(info->retry_delay->nanos, 500000000);
  google__rpc__retry_info__free_unpacked(info, NULL);
  google__rpc__status__free_unpacked(st, NULL);
}

static void test_too_small_a_buffer_is_refused(void **state) {
  (void)state;
  uint8_t buf[STATUS_DETAILS_MAX];
  const char *msg = "rate limit exceeded for write; retry in 20 ms";
  size_t len = status_details_retry(RPC_RESOURCE_EXHAUSTED, msg, 20, buf, sizeof buf);
  assert_true(len > 0);
  memset(buf, 0xee, sizeof buf);
  assert_int_equal(status_details_retry(RPC_RESOURCE_EXHAUSTED, msg, 20, buf, len - 1), 0);
  assert_int_equal(buf[0], 0xee); /* nothing written */
  assert_int_equal(status_details_retry(RPC_RESOURCE_EXHAUSTED, msg, 20, buf, len), len);
  assert_int_equal(status_details_retry(RPC_RESOURCE_EXHAUSTED, msg, -1, buf, sizeof buf), 0);
  /* The largest message the server can write fits the advertised bound. */
  char longest[256];
  memset(longest, 'x', 255);
  longest[255] = '\0';
  assert_true(status_details_retry(RPC_RESOURCE_EXHAUSTED, longest, INT64_MAX / 2, buf,
                                   sizeof buf) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_bytes_as_protoc_c),
      cmocka_unit_test(test_decodes_back),
      cmocka_unit_test(test_too_small_a_buffer_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
