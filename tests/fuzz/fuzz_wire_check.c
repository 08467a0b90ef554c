/* libFuzzer target for src/core/wire_check.c and validate.c. The first
 * byte picks a request type, the rest is its wire bytes. Invariants: a
 * refusal has a one-line message; when wire_check passes and protobuf-c
 * unpacks, every string of the message (at every depth) is strict UTF-8 and
 * the re-packed message passes again; validate_update_patch never sets a
 * field bit whose value would fail its own rule. Violations abort. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "product.pb-c.h"
#include "service/validate.h"
#include "core/wire_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const k_types[] = {
    &product__create_product_request__descriptor, &product__get_product_request__descriptor,
    &product__update_product_request__descriptor, &product__delete_product_request__descriptor,
    &product__list_products_request__descriptor,  &product__list_products_response__descriptor,
};

static void check_utf8(const char *s) {
  if (s && !wire_check_utf8((const uint8_t *)s, strlen(s))) abort();
}

/* Every string field of m, nested messages included. */
static void check_strings(const ProtobufCMessage *m, int depth) {
  if (!m || depth > WIRE_CHECK_MAX_DEPTH + 1) return;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)m + f->offset;
    size_t n = 1;
    const void *const *items = (const void *const *)base;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      n = *(const size_t *)((const char *)m + f->quantifier_offset);
      items = *(const void *const *const *)base;
    }
    for (size_t k = 0; k < n && items; k++) {
      if (f->type == PROTOBUF_C_TYPE_STRING) check_utf8(items[k]);
      if (f->type == PROTOBUF_C_TYPE_MESSAGE) check_strings(items[k], depth + 1);
    }
  }
}

static void check_patch(const Product__UpdateProductRequest *req) {
  product_patch p;
  char err[256];
  if (validate_update_patch(req, &p, err, sizeof err) != 0) {
    if (err[0] == '\0' || strchr(err, '\n') || p.fields != 0) abort();
    return;
  }
  if ((p.fields & PATCH_NAME) && validate_name(p.name, true, err, sizeof err)) abort();
  if ((p.fields & PATCH_DESCRIPTION) && validate_description(p.description, err, sizeof err))
    abort();
  if ((p.fields & PATCH_PRICE) && (!isfinite(p.price) || p.price < 0 || signbit(p.price)))
    abort();
  if ((p.fields & PATCH_CATEGORIES) &&
      validate_categories(p.categories, p.n_categories, err, sizeof err))
    abort();
  if (p.updated_us != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const ProtobufCMessageDescriptor *d = k_types[data[0] % (sizeof k_types / sizeof k_types[0])];
  const uint8_t *buf = data + 1;
  size_t len = size - 1;
  char err[256];
  err[0] = '\0';
  if (wire_check(d, buf, len, err, sizeof err) != 0) {
    if (err[0] == '\0' || strchr(err, '\n')) abort();
    return 0;
  }
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
  if (!m) return 0; /* wire_check does not replace unpacking's own checks */
  check_strings(m, 0);
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *again = malloc(n ? n : 1);
  if (!again) abort();
  if (protobuf_c_message_pack(m, again) != n) abort();
  if (wire_check(d, again, n, err, sizeof err) != 0) abort();
  free(again);
  if (d == &product__update_product_request__descriptor)
    check_patch((const Product__UpdateProductRequest *)m);
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
