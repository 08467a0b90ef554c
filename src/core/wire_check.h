#ifndef PRODUCT_CORE_WIRE_CHECK_H
#define PRODUCT_CORE_WIRE_CHECK_H
/* Checks a request's protobuf wire bytes before protobuf-c unpacks them,
 * because protobuf-c neither checks UTF-8 nor keeps a string past its first
 * NUL byte: a string the client sent and the string a handler sees would
 * differ. One pass, no allocation, nested messages depth-limited. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define WIRE_CHECK_MAX_DEPTH 32

/* Walks buf as a message of type d. Every length-delimited field that d (or
 * a nested message's descriptor) declares as `string` must be strict UTF-8
 * (no overlong forms, no surrogates, nothing above U+10FFFF) and hold no NUL
 * byte; `message` fields are walked in turn; unknown fields are skipped by
 * their wire type. Returns 0 when the bytes pass; otherwise non-zero with a
 * one-line, client-facing reason in err that names the field by its path
 * ("field 'update_mask.paths' is not valid UTF-8"; a NUL byte also names its
 * 0-based offset in the string: "field 'filter' contains a NUL byte at
 * offset 9") or says how the bytes are
 * malformed (truncated varint, length past the end, group wire types, field
 * number 0, a string or message field sent with a non-length wire type). */
int wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *err,
               size_t errlen);

/* Strict UTF-8 as above; NUL bytes are allowed here (wire_check refuses them
 * separately). */
bool wire_check_utf8(const uint8_t *s, size_t len);

#endif
