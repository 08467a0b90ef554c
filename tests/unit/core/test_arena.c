/* Tests for src/core/arena.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/arena.h"

static void test_allocations_are_aligned_and_distinct(void **state) {
  (void)state;
  arena *a = arena_create(64);
  char *p = arena_alloc(a, 3), *q = arena_alloc(a, 5);
  assert_non_null(p);
  assert_non_null(q);
  assert_true(((uintptr_t)p % 16) == 0);
  assert_true(((uintptr_t)q % 16) == 0);
  assert_true(q >= p + 3 || p >= q + 5);
  arena_destroy(a);
}

static void test_grows_past_the_first_block(void **state) {
  (void)state;
  arena *a = arena_create(64);
  for (int i = 0; i < 1000; i++) {
    char *p = arena_alloc(a, 100);
    assert_non_null(p);
    memset(p, i & 0xff, 100);
  }
  char *big = arena_alloc(a, 3 << 20);
  assert_non_null(big);
  memset(big, 1, 3 << 20);
  assert_true(arena_used(a) >= (3u << 20) + 100000);
  arena_destroy(a);
}

static void test_reset_keeps_working(void **state) {
  (void)state;
  arena *a = arena_create(128);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 100; i++) assert_non_null(arena_alloc(a, 64));
    arena_reset(a);
    assert_int_equal(arena_used(a), 0);
  }
  arena_destroy(a);
}

static void test_strndup_copies_and_terminates(void **state) {
  (void)state;
  arena *a = arena_create(0);
  char *s = arena_strndup(a, "hello world", 5);
  assert_string_equal(s, "hello");
  assert_string_equal(arena_strdup(a, ""), "");
  arena_destroy(a);
}

static void test_calloc_zeroes_and_rejects_overflow(void **state) {
  (void)state;
  arena *a = arena_create(0);
  unsigned char *p = arena_calloc(a, 10, 10);
  for (int i = 0; i < 100; i++) assert_int_equal(p[i], 0);
  assert_null(arena_calloc(a, SIZE_MAX / 2, 4));
  assert_null(arena_alloc(a, SIZE_MAX - 8));
  assert_null(arena_alloc(a, (size_t)1 << 30)); /* over the per-allocation cap */
  arena_destroy(a);
}

static void test_protobuf_allocator_draws_from_the_arena(void **state) {
  (void)state;
  arena *a = arena_create(0);
  ProtobufCAllocator pa;
  arena_pb_allocator(a, &pa);
  size_t before = arena_used(a);
  void *p = pa.alloc(pa.allocator_data, 40);
  assert_non_null(p);
  assert_true(arena_used(a) > before);
  pa.free(pa.allocator_data, p); /* a no-op: released with the arena */
  arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allocations_are_aligned_and_distinct),
      cmocka_unit_test(test_grows_past_the_first_block),
      cmocka_unit_test(test_reset_keeps_working),
      cmocka_unit_test(test_strndup_copies_and_terminates),
      cmocka_unit_test(test_calloc_zeroes_and_rejects_overflow),
      cmocka_unit_test(test_protobuf_allocator_draws_from_the_arena),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
