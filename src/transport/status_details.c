/* google.rpc.Status + RetryInfo for grpc-status-details-bin; see
 * status_details.h.
 *
 * Written out by hand into the caller's buffer rather than packed with
 * protoc-c: the message is a fixed shape (one code, one message, one Any
 * holding one RetryInfo), and protoc-c's size pass plus pack pass over the
 * three nested messages cost about 1,900 instructions per refused call,
 * 2 % of it (bench/callgrind_cost.py, scenario h). The layout follows
 * proto3's encoding of proto/google/rpc/{status,retry_info}.proto and
 * google/protobuf/duration.proto (fields in number order, zero scalars
 * left out); tests/unit/transport/test_status_details.c checks it byte for
 * byte against the protoc-c packing of the same messages. */
#include "transport/status_details.h"

#include <string.h>

static const char retry_info_url[] = "type.googleapis.com/google.rpc.RetryInfo";

/* Bytes of v as a base-128 varint. */
static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* A length-delimited field's tag and length. */
static uint8_t *put_len(uint8_t *p, unsigned field, size_t len) {
  *p++ = (uint8_t)(field << 3 | 2);
  return put_varint(p, len);
}

size_t status_details_retry(rpc_code code, const char *message, int64_t retry_ms, uint8_t *out,
                            size_t cap) {
  if (retry_ms < 0 || !message) return 0;
  int64_t seconds = retry_ms / 1000;
  int32_t nanos = (int32_t)(retry_ms % 1000) * 1000000;
  size_t msg_len = strlen(message);
  /* google.protobuf.Duration */
  size_t dur = (seconds ? 1 + varint_len((uint64_t)seconds) : 0) +
               (nanos ? 1 + varint_len((uint64_t)nanos) : 0);
  /* google.rpc.RetryInfo { retry_delay = 1 } (a set message field is
   * written even when empty) */
  size_t info = 1 + varint_len(dur) + dur;
  /* google.protobuf.Any { type_url = 1, value = 2 } */
  size_t url_len = sizeof retry_info_url - 1;
  size_t any = 1 + varint_len(url_len) + url_len + 1 + varint_len(info) + info;
  /* google.rpc.Status { code = 1, message = 2, details = 3 } */
  size_t total = (code ? 1 + varint_len((uint64_t)(int64_t)code) : 0) +
                 (msg_len ? 1 + varint_len(msg_len) + msg_len : 0) + 1 + varint_len(any) + any;
  if (total > cap) return 0;

  uint8_t *p = out;
  if (code) {
    *p++ = 1 << 3 | 0;
    p = put_varint(p, (uint64_t)(int64_t)code); /* int32: negative would be 10 bytes */
  }
  if (msg_len) {
    p = put_len(p, 2, msg_len);
    memcpy(p, message, msg_len);
    p += msg_len;
  }
  p = put_len(p, 3, any);
  p = put_len(p, 1, url_len);
  memcpy(p, retry_info_url, url_len);
  p += url_len;
  p = put_len(p, 2, info);
  p = put_len(p, 1, dur);
  if (seconds) {
    *p++ = 1 << 3 | 0;
    p = put_varint(p, (uint64_t)seconds);
  }
  if (nanos) {
    *p++ = 2 << 3 | 0;
    p = put_varint(p, (uint64_t)nanos);
  }
  return (size_t)(p - out);
}
