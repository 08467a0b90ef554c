/* Products as JSON: every field always present (scripts need not guess),
 * times in RFC 3339 UTC as protobuf's JSON mapping writes them, prices as
 * numbers in their shortest exact form. Strings from the server are not
 * trusted to be UTF-8 (protobuf-c does not check): bad bytes become U+FFFD. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/timefmt.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "product.pb-c.h"
#include "product_client.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char b = s[0];
  size_t len;
  uint32_t cp;
  if (b < 0x80)
    return 1;
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
    cp = b & 0x1f;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    cp = b & 0x0f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    cp = b & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* overlong forms, surrogates, beyond U+10FFFF */
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

json_t *pj_string(const char *s) {
  if (!s)
    s = "";
  json_t *j = json_string(s);
  if (j)
    return j;
  /* Not UTF-8: copy, replacing each bad byte by U+FFFD (3 bytes). */
  size_t n = strlen(s);
  char *fixed = malloc(3 * n + 1);
  if (!fixed)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t len = utf8_seq((const unsigned char *)s + i, n - i);
    if (len) {
      memcpy(fixed + o, s + i, len);
      o += len;
      i += len;
    } else {
      memcpy(fixed + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  fixed[o] = '\0';
  j = json_string(fixed);
  free(fixed);
  return j;
}

/* Protobuf's JSON mapping spells non-finite doubles as strings. */
static json_t *pj_double(double v) {
  if (isnan(v))
    return json_string("NaN");
  if (isinf(v))
    return json_string(v > 0 ? "Infinity" : "-Infinity");
  return json_real(v);
}

static json_t *pj_time(const Google__Protobuf__Timestamp *t) {
  char buf[TIMEFMT_RFC3339_MAX];
  if (!t || timefmt_rfc3339_ts(t->seconds, t->nanos, buf, sizeof buf) < 0)
    return json_null(); /* unset, or outside what RFC 3339 can say */
  return json_string(buf);
}

/* json_object_set_new steals the value even when it fails, so a NULL value
 * (out of memory) only needs to make the whole object fail. */
static int set(json_t *obj, const char *key, json_t *value) {
  return value && json_object_set_new(obj, key, value) == 0 ? 0 : -1;
}

json_t *pj_product(const Product__Product *p) {
  json_t *obj = json_object();
  json_t *cats = json_array();
  if (!obj || !cats)
    goto fail;
  for (size_t i = 0; i < p->n_categories; i++)
    if (json_array_append_new(cats, pj_string(p->categories[i])) != 0)
      goto fail;
  int rc = set(obj, "id", pj_string(p->id));
  rc |= set(obj, "name", pj_string(p->name));
  rc |= set(obj, "description", pj_string(p->description));
  rc |= set(obj, "price", pj_double(p->price));
  rc |= set(obj, "categories", cats);
  cats = NULL;
  rc |= set(obj, "created_at", pj_time(p->created_at));
  rc |= set(obj, "updated_at", pj_time(p->updated_at));
  rc |= set(obj, "etag", pj_string(p->etag));
  if (rc == 0)
    return obj;
fail:
  json_decref(cats);
  json_decref(obj);
  return NULL;
}

json_t *pj_list(const Product__ListProductsResponse *r) {
  json_t *obj = json_object();
  json_t *items = json_array();
  if (!obj || !items)
    goto fail;
  for (size_t i = 0; i < r->n_products; i++) {
    json_t *p = r->products[i] ? pj_product(r->products[i]) : json_null();
    if (json_array_append_new(items, p) != 0)
      goto fail;
  }
  int rc = set(obj, "products", items);
  items = NULL;
  rc |= set(obj, "next_page_token", pj_string(r->next_page_token));
  rc |= set(obj, "total_size", json_integer(r->total_size));
  if (rc == 0)
    return obj;
fail:
  json_decref(items);
  json_decref(obj);
  return NULL;
}

/* Fewest significant digits (1..17) that read back as exactly v, and at
 * least as many as its integer part has, so that %g keeps 10 as "10" (which
 * jansson prints as 10.0) instead of "1e+01". */
static int shortest_digits(double v) {
  char buf[400];
  int p = 1;
  for (; p < 17; p++) {
    snprintf(buf, sizeof buf, "%.*g", p, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  if (fabs(v) >= 10 && fabs(v) < 1e17) {
    int int_digits = snprintf(buf, sizeof buf, "%.0f", fabs(v));
    if (int_digits > p)
      p = int_digits > 17 ? 17 : int_digits;
  }
  return p;
}

/* jansson prints every real with one precision; use the largest that any
 * real in the document needs, so 999.99 prints as 999.99 and none loses bits. */
static int max_digits(json_t *v) {
  int best = 1;
  if (json_is_real(v))
    return shortest_digits(json_real_value(v));
  if (json_is_array(v)) {
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
      int d = max_digits(item);
      best = d > best ? d : best;
    }
  } else if (json_is_object(v)) {
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
      int d = max_digits(item);
      best = d > best ? d : best;
    }
  }
  return best;
}

int pj_print(json_t *value, FILE *f) {
  size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(max_digits(value));
  if (json_dumpf(value, f, flags) != 0 || fputc('\n', f) == EOF || fflush(f) != 0)
    return -1;
  return 0;
}
