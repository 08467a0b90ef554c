/* Tests for src/guard/h2_frames.c: the preface, frame headers split
 * across reads at every byte, each limit, and legitimate traffic that must
 * not trip any. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "guard/h2_frames.h"

#define SEC 1000000000LL
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static const h2_limits k_lim = {
    .header_block_bytes = 64 << 10,
    .header_block_frames = 8,
    .pings_per_s = 10,
    .settings_per_s = 10,
    .empty_data_per_s = 10,
    .rst_per_s = 10,
    .zero_window_streams = 10,
    .streams_before_ack = 50,
    .goaways = 4,
    .small_data_burst = 16,
    .small_data_per_s = 8,
    .small_data_per_stream = 4,
    .pending_bytes = 1 << 20,
    .pending_streams = 8,
};

typedef struct wire {
  uint8_t b[1 << 18];
  size_t n;
} wire;

static void put(wire *w, const void *p, size_t n) {
  assert_true(w->n + n <= sizeof w->b);
  memcpy(w->b + w->n, p, n);
  w->n += n;
}

/* A frame with `len` payload bytes (all 'x'). */
static void frame(wire *w, uint8_t type, uint8_t flags, uint32_t sid, uint32_t len) {
  uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                  (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
  put(w, h, sizeof h);
  assert_true(w->n + len <= sizeof w->b);
  memset(w->b + w->n, 'x', len);
  w->n += len;
}

static wire *start(void) {
  static wire w;
  w.n = 0;
  put(&w, PREFACE, 24);
  frame(&w, 4, 0, 0, 12); /* SETTINGS */
  return &w;
}

static h2_verdict feed_with(const h2_limits *lim, const wire *w, int64_t now) {
  h2_frames f;
  h2_frames_reset(&f);
  h2_verdict v = h2_frames_feed(&f, lim, w->b, w->n, now);
  h2_frames_release(&f);
  return v;
}


/* Fed in two reads split at every offset, then byte by byte: same verdict. */
static void expect_everywhere_with(const h2_limits *lim, const wire *w, h2_verdict want) {
  assert_int_equal(feed_with(lim, w, SEC), want);
  for (size_t cut = 0; cut <= w->n; cut++) {
    h2_frames f;
    h2_frames_reset(&f);
    h2_verdict v = h2_frames_feed(&f, lim, w->b, cut, SEC);
    if (v == H2_OK) v = h2_frames_feed(&f, lim, w->b + cut, w->n - cut, SEC);
    h2_frames_release(&f);
    assert_int_equal(v, want);
  }
  h2_frames f;
  h2_frames_reset(&f);
  h2_verdict v = H2_OK;
  for (size_t i = 0; i < w->n && v == H2_OK; i++) v = h2_frames_feed(&f, lim, w->b + i, 1, SEC);
  h2_frames_release(&f);
  assert_int_equal(v, want);
}

static void expect_everywhere(const wire *w, h2_verdict want) {
  expect_everywhere_with(&k_lim, w, want);
}

static void test_legit_call_passes(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 4, 1, 0, 0);        /* SETTINGS ACK */
  frame(w, 8, 0, 0, 4);        /* WINDOW_UPDATE */
  frame(w, 1, 0x4, 1, 300);    /* HEADERS, END_HEADERS */
  frame(w, 0, 0x1, 1, 20);     /* DATA, END_STREAM */
  frame(w, 6, 0, 0, 8);        /* PING */
  frame(w, 6, 1, 0, 8);        /* PING ACK */
  frame(w, 1, 0, 3, 16384);    /* a large header block in three frames */
  frame(w, 9, 0, 3, 16384);
  frame(w, 9, 0x4, 3, 100);
  frame(w, 0, 0x1, 3, 0);      /* empty DATA with END_STREAM: a normal close */
  expect_everywhere(w, H2_OK);
}

static void test_continuation_frames_over_limit(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 1, 0, 1, 10);
  for (int i = 0; i < 9; i++) frame(w, 9, 0, 1, 0); /* empty CONTINUATIONs */
  expect_everywhere(w, H2_HEADER_BLOCK);
}

static void test_continuation_frames_at_limit_pass(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 1, 0, 1, 10);
  for (int i = 0; i < 7; i++) frame(w, 9, 0, 1, 0);
  frame(w, 9, 0x4, 1, 0);
  /* A new block counts from zero. */
  frame(w, 1, 0, 3, 10);
  for (int i = 0; i < 7; i++) frame(w, 9, 0, 3, 0);
  frame(w, 9, 0x4, 3, 0);
  expect_everywhere(w, H2_OK);
}

static void test_header_block_bytes_over_limit(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 1, 0, 1, 16384);
  for (int i = 0; i < 3; i++) frame(w, 9, 0, 1, 16384);
  frame(w, 9, 0x4, 1, 1); /* 64 KiB + 1 */
  expect_everywhere(w, H2_HEADER_BLOCK);
}

static void test_ping_flood(void **state) {
  (void)state;
  wire *w = start();
  for (int i = 0; i < 11; i++) frame(w, 6, 0, 0, 8);
  expect_everywhere(w, H2_PING_FLOOD);
  /* ACKs are not counted. */
  w = start();
  for (int i = 0; i < 50; i++) frame(w, 6, 1, 0, 8);
  expect_everywhere(w, H2_OK);
}

static void test_settings_flood(void **state) {
  (void)state;
  wire *w = start(); /* one SETTINGS already */
  for (int i = 0; i < 10; i++) frame(w, 4, 0, 0, 6);
  expect_everywhere(w, H2_SETTINGS_FLOOD);
}

static void test_empty_data_flood(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 1, 0x4, 1, 10);
  for (int i = 0; i < 11; i++) frame(w, 0, 0, 1, 0);
  expect_everywhere(w, H2_EMPTY_FRAMES);
}

static void test_rst_flood(void **state) {
  (void)state;
  wire *w = start();
  for (int i = 0; i < 11; i++) frame(w, 3, 0, (uint32_t)(2 * i + 1), 4);
  expect_everywhere(w, H2_RST_FLOOD);
}

/* A SETTINGS frame that sets SETTINGS_INITIAL_WINDOW_SIZE (id 4). */
static void initial_window(wire *w, uint32_t value) {
  uint8_t h[9] = {0, 0, 12, 4, 0, 0, 0, 0, 0};
  uint8_t e[12] = {0, 3, 0, 0, 0, 100, /* MAX_CONCURRENT_STREAMS first */
                   0, 4, (uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8),
                   (uint8_t)value};
  put(w, h, sizeof h);
  put(w, e, sizeof e);
}

static void test_zero_window_client_opening_streams_is_closed(void **state) {
  (void)state;
  wire *w = start();
  initial_window(w, 0);
  for (int i = 0; i < 11; i++) frame(w, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  expect_everywhere(w, H2_ZERO_WINDOW);
}

static void test_zero_window_client_granting_credit_passes(void **state) {
  (void)state;
  wire *w = start();
  initial_window(w, 0);
  for (int i = 0; i < 40; i++) {
    frame(w, 1, 0x5, (uint32_t)(2 * i + 1), 20);
    if (i % 5 == 4) frame(w, 8, 0, (uint32_t)(2 * i + 1), 4); /* WINDOW_UPDATE */
  }
  expect_everywhere(w, H2_OK);
}

static void test_streams_with_a_window_pass(void **state) {
  (void)state;
  wire *w = start();
  initial_window(w, 65535);
  for (int i = 0; i < 40; i++) frame(w, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  expect_everywhere(w, H2_OK);
  /* A window set to 0 and back again counts only while it is 0. */
  wire *v = start();
  initial_window(v, 0);
  for (int i = 0; i < 8; i++) frame(v, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  initial_window(v, 1 << 20);
  for (int i = 8; i < 40; i++) frame(v, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  expect_everywhere(v, H2_OK);
}

/* The 1.51 core enforces its stream limit only once the client has
 * acknowledged the SETTINGS announcing it: before that, streams are counted
 * (HEADERS frames, not CONTINUATIONs). */
static void test_streams_before_settings_ack_over_limit(void **state) {
  (void)state;
  wire *w = start();
  for (int i = 0; i < 51; i++) frame(w, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  expect_everywhere(w, H2_UNACKED_SETTINGS);
  /* The client's own SETTINGS (no ACK flag) acknowledges nothing. */
  w = start();
  for (int i = 0; i < 50; i++) frame(w, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  frame(w, 4, 0, 0, 6);
  frame(w, 1, 0x5, 101, 20);
  expect_everywhere(w, H2_UNACKED_SETTINGS);
}

static void test_streams_before_settings_ack_at_limit_pass(void **state) {
  (void)state;
  wire *w = start();
  for (int i = 0; i < 50; i++) {
    frame(w, 1, 0x1, (uint32_t)(2 * i + 1), 20); /* no END_HEADERS: a CONTINUATION follows */
    frame(w, 9, 0x4, (uint32_t)(2 * i + 1), 20);
  }
  frame(w, 4, 1, 0, 0); /* SETTINGS ACK: the core's stream limit holds from here */
  for (int i = 50; i < 300; i++) frame(w, 1, 0x5, (uint32_t)(2 * i + 1), 20);
  expect_everywhere(w, H2_OK);
}

static void test_goaway_flood(void **state) {
  (void)state;
  wire *w = start();
  for (int i = 0; i < 4; i++) frame(w, 7, 0, 0, 8);
  expect_everywhere(w, H2_OK); /* a closing client's one or two, and a few more */
  frame(w, 7, 0, 0, 8);
  expect_everywhere(w, H2_GOAWAY_FLOOD);
}

/* A message fed in tiny DATA frames (the core keeps ~40 bytes a frame). */
static void test_a_message_in_tiny_frames_is_closed(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 1, 0x4, 1, 20);
  for (int i = 0; i < 16; i++) frame(w, 0, 0, 1, 1); /* the burst (a stream's 4 do not bank) */
  expect_everywhere(w, H2_OK);
  frame(w, 0, 0, 1, 1);
  expect_everywhere(w, H2_SMALL_DATA);
  /* Padded frames count as small whatever their length. */
  w = start();
  frame(w, 1, 0x4, 1, 20);
  for (int i = 0; i < 17; i++) frame(w, 0, 0x8, 1, 200);
  expect_everywhere(w, H2_SMALL_DATA);
  /* 31 bytes is small, 32 is not. */
  w = start();
  frame(w, 1, 0x4, 1, 20);
  for (int i = 0; i < 200; i++) frame(w, 0, 0, 1, H2_SMALL_DATA_BYTES);
  expect_everywhere(w, H2_OK);
  w = start();
  frame(w, 1, 0x4, 1, 20);
  for (int i = 0; i < 17; i++) frame(w, 0, 0, 1, H2_SMALL_DATA_BYTES - 1);
  expect_everywhere(w, H2_SMALL_DATA);
}

/* Only a HEADERS that opens a new stream (odd, above the last) pays small
 * frames back: the core ignores the others without a word. */
static void test_ignored_headers_earn_no_small_frames(void **state) {
  (void)state;
  for (uint32_t junk = 0; junk < 2; junk++) {
    wire *w = start();
    frame(w, 1, 0x4, 3, 20);
    for (int i = 0; i < 5; i++) {
      frame(w, 1, 0x4, junk ? 2 : 3, 9); /* an even stream, or stream 3 again */
      for (int k = 0; k < 4; k++) frame(w, 0, 0, 3, 1);
    }
    expect_everywhere(w, H2_SMALL_DATA); /* 20 small frames over the burst of 16 */
  }
}

/* Small requests, one or two frames a stream, never run out. */
static void test_small_requests_on_many_streams_pass(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 4, 1, 0, 0);
  for (int i = 0; i < 500; i++) {
    frame(w, 1, 0x4, (uint32_t)(2 * i + 1), 20);
    frame(w, 0, 0, (uint32_t)(2 * i + 1), 12); /* the message */
    frame(w, 0, 0x1, (uint32_t)(2 * i + 1), 0); /* END_STREAM apart, as grpc-js may */
  }
  expect_everywhere(w, H2_OK);
}

/* Whole seconds pay small frames back, and only whole ones. */
static void test_small_frames_are_paid_back_each_second(void **state) {
  (void)state;
  h2_frames f;
  h2_frames_reset(&f);
  wire *w = start();
  frame(w, 1, 0x4, 1, 20);
  for (int i = 0; i < 16; i++) frame(w, 0, 0, 1, 1);
  assert_int_equal(h2_frames_feed(&f, &k_lim, w->b, w->n, SEC), H2_OK);
  w->n = 0;
  for (int i = 0; i < 16; i++) frame(w, 0, 0, 1, 1); /* two seconds later: 2 x 8 back */
  assert_int_equal(h2_frames_feed(&f, &k_lim, w->b, w->n, 3 * SEC + SEC / 2), H2_OK);
  w->n = 0;
  frame(w, 0, 0, 1, 1); /* half a second more: nothing back yet */
  assert_int_equal(h2_frames_feed(&f, &k_lim, w->b, w->n, 3 * SEC + SEC * 9 / 10), H2_SMALL_DATA);
  h2_frames_release(&f);
}

/* Request bytes on streams not ended: what the core holds for messages to
 * come. 1000 bytes and 4 streams here. */
static const h2_limits k_pend = {.pending_bytes = 1000, .pending_streams = 4};

static void test_request_bytes_held_on_open_streams_are_bounded(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 1, 0x4, 1, 20); /* small header blocks are not counted */
  frame(w, 1, 0x4, 3, 20);
  frame(w, 0, 0, 1, 600);
  frame(w, 0, 0, 3, 400); /* 1000 in all: at the bound */
  expect_everywhere_with(&k_pend, w, H2_OK);
  frame(w, 0, 0, 3, 1);
  expect_everywhere_with(&k_pend, w, H2_PENDING_DATA);
  /* Large header blocks, held open, count three times once over 16 KiB,
   * CONTINUATIONs included; smaller ones not at all. */
  static const h2_limits big = {.pending_bytes = 200 << 10, .pending_streams = 8};
  w = start();
  frame(w, 1, 0x0, 1, 16 << 10);
  frame(w, 9, 0x4, 1, 10 << 10); /* 26 KiB: 78 */
  frame(w, 1, 0x0, 3, 16 << 10);
  frame(w, 9, 0x4, 3, 10 << 10); /* 156 */
  frame(w, 1, 0x4, 5, 16 << 10); /* at 16 KiB: not counted */
  frame(w, 1, 0x0, 7, 10 << 10);
  frame(w, 9, 0x4, 7, 4 << 10);  /* 14 KiB: not counted */
  expect_everywhere_with(&big, w, H2_OK);
  frame(w, 1, 0x0, 9, 16 << 10);
  frame(w, 9, 0x4, 9, 1);        /* 16 KiB + 1: 3 x that, 204 in all */
  expect_everywhere_with(&big, w, H2_PENDING_DATA);
  /* A HEADERS that ends its stream (a request with no body) holds nothing. */
  w = start();
  for (uint32_t s = 1; s < 20; s += 2) frame(w, 1, 0x5, s, 20 << 10);
  expect_everywhere_with(&big, w, H2_OK);
  /* More streams with bytes held than allowed. */
  w = start();
  for (uint32_t s = 1; s <= 9; s += 2) frame(w, 0, 0, s, 10);
  expect_everywhere_with(&k_pend, w, H2_PENDING_DATA);
}

static void test_ended_streams_no_longer_count(void **state) {
  (void)state;
  wire *w = start();
  frame(w, 0, 0, 1, 900);
  frame(w, 0, 0x1, 1, 0);      /* END_STREAM apart */
  frame(w, 0, 0, 3, 900);
  frame(w, 3, 0, 3, 4);        /* RST_STREAM */
  frame(w, 0, 0, 5, 900);
  frame(w, 1, 0x5, 5, 10);     /* trailers: HEADERS with END_STREAM */
  frame(w, 0, 0, 7, 900);
  frame(w, 0, 0x1, 7, 50);     /* the rest of a message with END_STREAM */
  for (uint32_t s = 9; s < 400; s += 2) frame(w, 0, 0x1, s, 900); /* whole messages */
  frame(w, 0, 0, 401, 1000);
  expect_everywhere_with(&k_pend, w, H2_OK);
  /* Requests as clients send them: HEADERS, then the message with
   * END_STREAM (or apart): each stream's count goes with it. */
  w = start();
  for (uint32_t s = 1; s < 400; s += 2) {
    frame(w, 1, 0x4, s, 300);
    frame(w, 0, s % 4 == 1 ? 0x1 : 0, s, 40);
    if (s % 4 != 1) frame(w, 0, 0x1, s, 0);
  }
  expect_everywhere_with(&k_pend, w, H2_OK);
}

static void test_rate_window_resets_each_second(void **state) {
  (void)state;
  h2_frames f;
  h2_frames_reset(&f);
  wire *w = start();
  assert_int_equal(h2_frames_feed(&f, &k_lim, w->b, w->n, 0), H2_OK);
  for (int s = 0; s < 5; s++) {
    w->n = 0;
    for (int i = 0; i < 10; i++) frame(w, 6, 0, 0, 8);
    assert_int_equal(h2_frames_feed(&f, &k_lim, w->b, w->n, (int64_t)s * SEC + 1), H2_OK);
  }
  w->n = 0;
  frame(w, 6, 0, 0, 8);
  assert_int_equal(h2_frames_feed(&f, &k_lim, w->b, w->n, 4 * SEC + 2), H2_PING_FLOOD);
  /* Sticky: later bytes, even harmless ones, keep the verdict. */
  assert_int_equal(h2_frames_feed(&f, &k_lim, (const uint8_t *)"", 0, 10 * SEC), H2_PING_FLOOD);
}

static void test_zero_limits_are_off(void **state) {
  (void)state;
  static const h2_limits off = {0};
  wire *w = start();
  frame(w, 1, 0, 1, 16384);
  for (int i = 0; i < 200; i++) frame(w, 9, 0, 1, 100);
  for (int i = 0; i < 200; i++) frame(w, 6, 0, 0, 8);
  h2_frames f;
  h2_frames_reset(&f);
  assert_int_equal(h2_frames_feed(&f, &off, w->b, w->n, SEC), H2_OK);
}

static void test_not_http2_is_left_to_the_core(void **state) {
  (void)state;
  wire w = {.n = 0};
  put(&w, "GET / HTTP/1.1\r\n\r\n", 18);
  frame(&w, 6, 0, 0, 8);
  h2_frames f;
  h2_frames_reset(&f);
  assert_int_equal(h2_frames_feed(&f, &k_lim, w.b, w.n, SEC), H2_OK);
  for (int i = 0; i < 20; i++) assert_int_equal(h2_frames_feed(&f, &k_lim, w.b, w.n, SEC), H2_OK);
}

static void test_verdict_names(void **state) {
  (void)state;
  assert_string_equal(h2_verdict_name(H2_HEADER_BLOCK), "header_block");
  assert_string_equal(h2_verdict_name(H2_EMPTY_FRAMES), "empty_frames");
  assert_string_equal(h2_verdict_name(H2_ZERO_WINDOW), "zero_window");
  assert_string_equal(h2_verdict_name(H2_UNACKED_SETTINGS), "unacked_settings");
  assert_string_equal(h2_verdict_name(H2_GOAWAY_FLOOD), "goaway_flood");
  assert_string_equal(h2_verdict_name(H2_SMALL_DATA), "small_data");
  assert_string_equal(h2_verdict_name(H2_PENDING_DATA), "pending_data");
  assert_string_equal(h2_verdict_name(H2_RAPID_RESET), "rapid_reset");
  assert_string_equal(h2_verdict_name(H2_UNKNOWN_METHODS), "unknown_methods");
  assert_string_equal(h2_verdict_name(H2_VERDICT_COUNT), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_legit_call_passes),
      cmocka_unit_test(test_continuation_frames_over_limit),
      cmocka_unit_test(test_continuation_frames_at_limit_pass),
      cmocka_unit_test(test_header_block_bytes_over_limit),
      cmocka_unit_test(test_ping_flood),
      cmocka_unit_test(test_settings_flood),
      cmocka_unit_test(test_empty_data_flood),
      cmocka_unit_test(test_rst_flood),
      cmocka_unit_test(test_zero_window_client_opening_streams_is_closed),
      cmocka_unit_test(test_zero_window_client_granting_credit_passes),
      cmocka_unit_test(test_streams_with_a_window_pass),
      cmocka_unit_test(test_streams_before_settings_ack_over_limit),
      cmocka_unit_test(test_streams_before_settings_ack_at_limit_pass),
      cmocka_unit_test(test_goaway_flood),
      cmocka_unit_test(test_a_message_in_tiny_frames_is_closed),
      cmocka_unit_test(test_small_requests_on_many_streams_pass),
      cmocka_unit_test(test_ignored_headers_earn_no_small_frames),
      cmocka_unit_test(test_small_frames_are_paid_back_each_second),
      cmocka_unit_test(test_request_bytes_held_on_open_streams_are_bounded),
      cmocka_unit_test(test_ended_streams_no_longer_count),
      cmocka_unit_test(test_rate_window_resets_each_second),
      cmocka_unit_test(test_zero_limits_are_off),
      cmocka_unit_test(test_not_http2_is_left_to_the_core),
      cmocka_unit_test(test_verdict_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
