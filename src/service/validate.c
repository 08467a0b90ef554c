/* Request field rules; see validate.h. */
#include "service/validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/wire_check.h"

static const char *or_empty(const char *s) { return s ? s : ""; }

static int check_utf8(const char *field, const char *s, size_t n, char *err, size_t errlen) {
  if (wire_check_utf8((const uint8_t *)s, n)) return 0;
  snprintf(err, errlen, "%s is not valid UTF-8", field);
  return -1;
}

int validate_id(const char *id, char *err, size_t errlen) {
  id = or_empty(id);
  if (id[0] == '\0') {
    snprintf(err, errlen, "id must not be empty");
    return -1;
  }
  return check_utf8("id", id, strlen(id), err, errlen);
}

int validate_name(const char *name, bool required, char *err, size_t errlen) {
  name = or_empty(name);
  size_t n = strlen(name);
  if (required && n == 0) {
    snprintf(err, errlen, "name must not be empty");
    return -1;
  }
  if (n > VALIDATE_NAME_MAX) {
    snprintf(err, errlen, "name is %zu bytes; at most %d are allowed", n, VALIDATE_NAME_MAX);
    return -1;
  }
  return check_utf8("name", name, n, err, errlen);
}

int validate_description(const char *description, char *err, size_t errlen) {
  description = or_empty(description);
  size_t n = strlen(description);
  if (n > VALIDATE_DESCRIPTION_MAX) {
    snprintf(err, errlen, "description is %zu bytes; at most %d are allowed", n,
             VALIDATE_DESCRIPTION_MAX);
    return -1;
  }
  return check_utf8("description", description, n, err, errlen);
}

int validate_price(double price, char *err, size_t errlen) {
  /* isfinite first: NaN compares false with everything. */
  if (!isfinite(price)) {
    snprintf(err, errlen, "price must be a finite number");
    return -1;
  }
  if (price < 0) {
    snprintf(err, errlen, "price must not be negative");
    return -1;
  }
  return 0;
}

int validate_categories(char *const *categories, size_t n, char *err, size_t errlen) {
  if (n > VALIDATE_CATEGORIES_MAX) {
    snprintf(err, errlen, "%zu categories; at most %d are allowed", n, VALIDATE_CATEGORIES_MAX);
    return -1;
  }
  if (n > 0 && !categories) {
    snprintf(err, errlen, "categories are missing");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    const char *c = or_empty(categories[i]);
    size_t len = strlen(c);
    if (len == 0) {
      snprintf(err, errlen, "categories[%zu] is empty", i);
      return -1;
    }
    if (len > VALIDATE_CATEGORY_MAX) {
      snprintf(err, errlen, "categories[%zu] is %zu bytes; at most %d are allowed", i, len,
               VALIDATE_CATEGORY_MAX);
      return -1;
    }
    if (!wire_check_utf8((const uint8_t *)c, len)) {
      snprintf(err, errlen, "categories[%zu] is not valid UTF-8", i);
      return -1;
    }
  }
  return 0;
}

int validate_request_id(const char *request_id, char out[PRODUCT_ID_LEN + 1], char *err,
                        size_t errlen) {
  const char *s = or_empty(request_id);
  size_t n = strlen(s);
  bool ok = n == PRODUCT_ID_LEN;
  for (size_t i = 0; ok && i < n; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23)
      ok = c == '-';
    else
      ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    out[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
  }
  if (!ok) {
    snprintf(err, errlen, "request_id must be a UUID (36 characters, like %s)",
             "123e4567-e89b-42d3-a456-426614174000");
    return -1;
  }
  out[n] = '\0';
  return 0;
}

int validate_create(const Product__CreateProductRequest *req, char *err, size_t errlen) {
  if (!req) {
    snprintf(err, errlen, "missing request");
    return -1;
  }
  if (validate_name(req->name, true, err, errlen) ||
      validate_description(req->description, err, errlen) ||
      validate_price(req->price, err, errlen) ||
      validate_categories(req->categories, req->n_categories, err, errlen))
    return -1;
  return 0;
}

int validate_page_size(int32_t page_size, size_t *effective, char *err, size_t errlen) {
  if (page_size < 0) {
    snprintf(err, errlen, "page_size must not be negative");
    return -1;
  }
  if (page_size == 0)
    *effective = VALIDATE_PAGE_SIZE_DEFAULT;
  else if (page_size > VALIDATE_PAGE_SIZE_MAX)
    *effective = VALIDATE_PAGE_SIZE_MAX;
  else
    *effective = (size_t)page_size;
  return 0;
}

/* The PATCH_* bit a mask path names, 0 for anything else. Exact and
 * case-sensitive, as proto field names are. */
static unsigned mask_bit(const char *path) {
  static const struct {
    const char *path;
    unsigned bit;
  } k_paths[] = {
      {"name", PATCH_NAME},
      {"description", PATCH_DESCRIPTION},
      {"price", PATCH_PRICE},
      {"categories", PATCH_CATEGORIES},
  };
  for (size_t i = 0; i < sizeof k_paths / sizeof k_paths[0]; i++)
    if (strcmp(path, k_paths[i].path) == 0) return k_paths[i].bit;
  return 0;
}

/* A mask path for a message: at most 64 bytes, controls and non-ASCII bytes
 * replaced, so a cut never splits a UTF-8 sequence. */
static const char *shown_path(const char *p, char *buf, size_t n) {
  size_t i = 0;
  for (; p[i] && i + 1 < n && i < 64; i++) {
    unsigned char ch = (unsigned char)p[i];
    buf[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
  }
  buf[i] = '\0';
  return buf;
}

static int mask_fields(const Google__Protobuf__FieldMask *mask, unsigned *fields, char *err,
                       size_t errlen) {
  char buf[80];
  *fields = 0;
  for (size_t i = 0; i < mask->n_paths; i++) {
    const char *p = or_empty(mask->paths ? mask->paths[i] : NULL);
    unsigned bit = mask_bit(p);
    if (!bit) {
      snprintf(err, errlen,
               "update_mask path '%s' is not one of name, description, price, categories",
               shown_path(p, buf, sizeof buf));
      return -1;
    }
    *fields |= bit; /* a path named twice counts once */
  }
  return 0;
}

int validate_update_patch(const Product__UpdateProductRequest *req, product_patch *out, char *err,
                          size_t errlen) {
  product_patch p = {0};
  unsigned fields = 0;
  memset(out, 0, sizeof *out);
  if (!req) {
    snprintf(err, errlen, "missing request");
    return -1;
  }
  if (validate_id(req->id, err, errlen)) return -1;

  bool masked = req->update_mask && req->update_mask->n_paths > 0;
  if (masked) {
    if (mask_fields(req->update_mask, &fields, err, errlen)) return -1;
  } else {
    if (or_empty(req->name)[0]) fields |= PATCH_NAME;
    if (or_empty(req->description)[0]) fields |= PATCH_DESCRIPTION;
    /* NaN != 0, so a NaN price is taken and then refused below. */
    if (req->price != 0) fields |= PATCH_PRICE;
    if (req->n_categories > 0) fields |= PATCH_CATEGORIES;
  }

  /* Only what the patch takes is checked: an unmasked field is ignored. */
  if (fields & PATCH_NAME) {
    if (validate_name(req->name, true, err, errlen)) return -1;
    p.name = or_empty(req->name);
  }
  if (fields & PATCH_DESCRIPTION) {
    if (validate_description(req->description, err, errlen)) return -1;
    p.description = or_empty(req->description);
  }
  if (fields & PATCH_PRICE) {
    if (validate_price(req->price, err, errlen)) return -1;
    p.price = req->price == 0 ? 0.0 : req->price; /* no -0 stored */
  }
  if (fields & PATCH_CATEGORIES) {
    if (validate_categories(req->categories, req->n_categories, err, errlen)) return -1;
    p.categories = req->categories;
    p.n_categories = req->n_categories;
  }
  p.fields = fields;
  *out = p;
  return 0;
}
