/* product.ProductService handlers; see product_service.h. */
#include "service/product_service.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/keyring.h"
#include "core/uuid.h"
#include "google/protobuf/empty.pb-c.h"
#include "product.pb-c.h"
#include "service/env.h"
#include "service/validate.h"
#include "store/filter.h"
#include "auth/page_token.h"

#define ERR_MAX 200

/* The id is not echoed: the caller knows what it asked for, and status
 * messages reach the log, which never carries request content. */
static void fail_store(call_ctx *c, store_status st) {
  switch (st) {
    case STORE_NOT_FOUND:
      call_fail(c, RPC_NOT_FOUND, "no product with this id");
      return;
    case STORE_UNAVAILABLE:
      call_fail(c, RPC_UNAVAILABLE, "the product store is unavailable, retry later");
      return;
    default:
      snprintf(c->fault_detail, sizeof c->fault_detail, "store error in %s", c->method->name);
      call_fail(c, RPC_INTERNAL, "internal error");
      return;
  }
}

static Google__Protobuf__Timestamp *timestamp(call_ctx *c, int64_t us) {
  Google__Protobuf__Timestamp *t = call_alloc(c, sizeof(*t));
  google__protobuf__timestamp__init(t);
  int64_t sec = us / 1000000, rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    sec -= 1;
  }
  t->seconds = sec;
  t->nanos = (int32_t)(rem * 1000);
  return t;
}

/* The wire message for a stored product; strings are shared, not copied. */
static void to_message(call_ctx *c, const product *p, Product__Product *m) {
  product__product__init(m);
  m->id = (char *)p->id;
  m->name = p->name;
  m->description = p->description;
  m->price = p->price;
  m->n_categories = p->n_categories;
  m->categories = p->categories;
  m->created_at = timestamp(c, p->created_us);
  m->updated_at = timestamp(c, p->updated_us);
}

static void reply_product(call_ctx *c, const product *p) {
  Product__Product *m = call_alloc(c, sizeof(*m));
  to_message(c, p, m);
  call_reply(c, &m->base);
}

static bool check(call_ctx *c, int rc, const char *err) {
  if (rc == 0) return true;
  call_fail(c, RPC_INVALID_ARGUMENT, "%s", err);
  return false;
}

void product_CreateProduct(call_ctx *c) {
  const Product__CreateProductRequest *req = (const Product__CreateProductRequest *)c->request;
  char err[ERR_MAX];
  if (!check(c, validate_create(req, err, sizeof err), err)) return;

  product *p = call_alloc(c, sizeof(*p));
  memset(p, 0, sizeof *p);
  if (uuid_v4(p->id) != 0) call_panic("the random generator failed");
  p->name = req->name;
  p->description = req->description;
  p->price = req->price;
  p->categories = req->categories;
  p->n_categories = req->n_categories;
  p->created_us = p->updated_us = clock_wall_us();
  FAULT_POINT("create");
  store_status st = store_create(c->env->store, p);
  if (st != STORE_OK) {
    fail_store(c, st);
    return;
  }
  reply_product(c, p);
}

void product_GetProduct(call_ctx *c) {
  const Product__GetProductRequest *req = (const Product__GetProductRequest *)c->request;
  char err[ERR_MAX];
  if (!check(c, validate_id(req->id, err, sizeof err), err)) return;
  product *p = call_alloc(c, sizeof(*p));
  store_status st = store_get(c->env->store, req->id, c->arena, p);
  if (st != STORE_OK) {
    fail_store(c, st);
    return;
  }
  reply_product(c, p);
}

void product_UpdateProduct(call_ctx *c) {
  const Product__UpdateProductRequest *req = (const Product__UpdateProductRequest *)c->request;
  char err[ERR_MAX];
  product_patch patch;
  /* The id, then the mask, before the product is looked up. */
  if (!check(c, validate_update_patch(req, &patch, err, sizeof err), err)) return;
  patch.updated_us = clock_wall_us();
  product *p = call_alloc(c, sizeof(*p));
  store_status st = store_update(c->env->store, req->id, &patch, c->arena, p);
  if (st != STORE_OK) {
    fail_store(c, st);
    return;
  }
  reply_product(c, p);
}

void product_DeleteProduct(call_ctx *c) {
  const Product__DeleteProductRequest *req = (const Product__DeleteProductRequest *)c->request;
  char err[ERR_MAX];
  if (!check(c, validate_id(req->id, err, sizeof err), err)) return;
  store_status st = store_remove(c->env->store, req->id);
  if (st != STORE_OK) {
    fail_store(c, st);
    return;
  }
  Google__Protobuf__Empty *e = call_alloc(c, sizeof(*e));
  google__protobuf__empty__init(e);
  call_reply(c, &e->base);
}

/* Page tokens follow the keys in force: with a key set, the page keys of
 * the snapshot in force (a reference of our own, no lock); otherwise the
 * secret's page key. */
_Static_assert(PAGE_CURSOR_ID_LEN == PRODUCT_ID_LEN, "a page token carries a product id");

static int page_decode(call_ctx *c, const char *tok, const char *text, size_t text_len,
                       store_cursor *after) {
  keyring_snap *snap = c->env->keyring ? keyring_acquire(c->env->keyring) : NULL;
  const page_keyset *ks = snap ? keyring_snap_page_keys(snap) : NULL;
  page_cursor pc;
  int rc = ks ? page_keyset_decode(ks, tok, strlen(tok), text, text_len, &pc)
              : page_token_decode(c->env->page_key, tok, strlen(tok), text, text_len, &pc);
  keyring_release(snap);
  if (rc != 0) return rc;
  after->created_us = pc.created_us;
  memcpy(after->id, pc.id, sizeof after->id);
  return 0;
}

static int page_encode(call_ctx *c, const store_cursor *next, const char *text, size_t text_len,
                       char *buf) {
  keyring_snap *snap = c->env->keyring ? keyring_acquire(c->env->keyring) : NULL;
  const page_keyset *ks = snap ? keyring_snap_page_keys(snap) : NULL;
  page_cursor pc = {.created_us = next->created_us};
  memcpy(pc.id, next->id, sizeof pc.id);
  int rc = ks ? page_keyset_encode(ks, &pc, text, text_len, buf, PAGE_TOKEN_MAX)
              : page_token_encode(c->env->page_key, &pc, text, text_len, buf, PAGE_TOKEN_MAX);
  keyring_release(snap);
  return rc;
}

void product_ListProducts(call_ctx *c) {
  const Product__ListProductsRequest *req = (const Product__ListProductsRequest *)c->request;
  char err[ERR_MAX];
  size_t limit;
  if (!check(c, validate_page_size(req->page_size, &limit, err, sizeof err), err)) return;

  const char *text = req->filter ? req->filter : "";
  size_t text_len = strlen(text);
  filter *f = NULL;
  int frc = filter_parse(text, text_len, c->arena, &f, err, sizeof err);
  if (frc == FILTER_ENOMEM) call_panic("out of memory parsing a filter");
  if (!check(c, frc, err)) return;

  store_cursor after;
  const char *tok = req->page_token ? req->page_token : "";
  bool has_cursor = tok[0] != '\0';
  if (has_cursor && page_decode(c, tok, text, text_len, &after) != 0) {
    call_fail(c, RPC_INVALID_ARGUMENT, "page_token was not issued for this filter by this service");
    return;
  }

  store_list_result res;
  store_status st =
      store_list(c->env->store, f, has_cursor ? &after : NULL, limit, c->arena, &res);
  if (st != STORE_OK) {
    fail_store(c, st);
    return;
  }

  Product__ListProductsResponse *resp = call_alloc(c, sizeof(*resp));
  product__list_products_response__init(resp);
  resp->n_products = res.n;
  resp->products = call_alloc(c, (res.n ? res.n : 1) * sizeof(*resp->products));
  Product__Product *msgs = call_alloc(c, (res.n ? res.n : 1) * sizeof(*msgs));
  for (size_t i = 0; i < res.n; i++) {
    to_message(c, &res.items[i], &msgs[i]);
    resp->products[i] = &msgs[i];
  }
  resp->total_size = res.total > INT32_MAX ? INT32_MAX : (int32_t)res.total;
  resp->next_page_token = "";
  if (res.more && res.n > 0) {
    store_cursor next;
    next.created_us = res.items[res.n - 1].created_us;
    memcpy(next.id, res.items[res.n - 1].id, sizeof next.id);
    char *buf = call_alloc(c, PAGE_TOKEN_MAX);
    if (page_encode(c, &next, text, text_len, buf) != 0)
      call_panic("cannot encode a page token");
    resp->next_page_token = buf;
  }
  call_reply(c, &resp->base);
}
