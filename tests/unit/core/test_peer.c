/* Tests for core/peer.c: the host of each peer form the gRPC core writes,
 * the 1.51 core's percent-encoded IPv6 brackets included (what the spans'
 * client.address and the rate limits' caller are made of). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/peer.h"

static void expect_host(const char *peer, const char *want) {
  const char *host = NULL;
  size_t len = 0;
  if (!peer_host(peer, &host, &len)) fail_msg("%s: no host", peer);
  if (len != strlen(want) || memcmp(host, want, len) != 0)
    fail_msg("%s -> '%.*s', want '%s'", peer, (int)len, host, want);
}

static void the_host_of_each_ip_peer_form(void **state) {
  (void)state;
  expect_host("ipv4:127.0.0.1:40174", "127.0.0.1");
  expect_host("ipv4:10.1.2.3", "10.1.2.3");
  expect_host("ipv6:[::1]:5", "::1");
  expect_host("ipv6:[2001:db8::7]:50051", "2001:db8::7");
  /* The 1.51 core writes the brackets percent-encoded, in either case. */
  expect_host("ipv6:%5B::1%5D:5", "::1");
  expect_host("ipv6:%5B2001:db8:1:2:3:4:5:6%5D:5000", "2001:db8:1:2:3:4:5:6");
  expect_host("ipv6:%5b2001:db8::7%5d:50051", "2001:db8::7");
  expect_host("ipv6:%5Bfe80::1%25eth0%5D:5000", "fe80::1%25eth0"); /* the zone as written */
  expect_host("ipv6:[fe80::1%25eth0]:5000", "fe80::1%25eth0");
  /* A bracket never closed: the rest, never a read past the text. */
  expect_host("ipv6:%5B::1", "::1");
  expect_host("ipv6:[::1", "::1");
}

static void other_peers_have_no_host(void **state) {
  (void)state;
  const char *host = "unchanged";
  size_t len = 7;
  assert_false(peer_host("unix:/tmp/sock", &host, &len));
  assert_false(peer_host("", &host, &len));
  assert_false(peer_host(NULL, &host, &len));
  assert_false(peer_host("ipv4", &host, &len));
  assert_string_equal(host, "unchanged");
  assert_int_equal(len, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_host_of_each_ip_peer_form),
      cmocka_unit_test(other_peers_have_no_host),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
