/* product.ProductService handlers; see product_service.h. */
#include "service/product_service.h"

#include <openssl/evp.h>
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
    case STORE_CONFLICT:
      call_fail(c, RPC_ABORTED, "etag is not the product's current etag; read it again");
      return;
    case STORE_MISMATCH:
      call_fail(c, RPC_ALREADY_EXISTS,
                "request_id was already used with other fields; use a new request_id");
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
  m->etag = call_alloc(c, STORE_ETAG_LEN + 1);
  store_etag(p, m->etag);
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

/* A digest of what a CreateProduct asks for (as stored: -0 is 0), in hex:
 * a repeat of a request id is a retry only when this is the same. Every
 * field is length-prefixed, so no two requests encode alike. The first 128
 * bits of SHA-256: it is only ever compared with the one digest stored
 * under the same caller and id, and every byte less is a byte less written
 * with each request id. */
#define FINGERPRINT_BYTES 16
_Static_assert(FINGERPRINT_BYTES * 2 <= STORE_FINGERPRINT_MAX, "fingerprint too long");
static void fingerprint(const product *p, char out[STORE_FINGERPRINT_MAX + 1]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  const char *texts[2] = {p->name ? p->name : "", p->description ? p->description : ""};
  for (size_t i = 0; ok && i < 2; i++) {
    uint64_t n = strlen(texts[i]);
    ok = EVP_DigestUpdate(ctx, &n, sizeof n) == 1 && EVP_DigestUpdate(ctx, texts[i], n) == 1;
  }
  double price = p->price == 0 ? 0.0 : p->price;
  uint64_t n_cat = p->n_categories;
  ok = ok && EVP_DigestUpdate(ctx, &price, sizeof price) == 1 &&
       EVP_DigestUpdate(ctx, &n_cat, sizeof n_cat) == 1;
  for (size_t i = 0; ok && i < p->n_categories; i++) {
    const char *cat = p->categories[i] ? p->categories[i] : "";
    uint64_t n = strlen(cat);
    ok = EVP_DigestUpdate(ctx, &n, sizeof n) == 1 && EVP_DigestUpdate(ctx, cat, n) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len >= FINGERPRINT_BYTES;
  EVP_MD_CTX_free(ctx);
  if (!ok) call_panic("cannot digest a request");
  for (unsigned i = 0; i < FINGERPRINT_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void product_CreateProduct(call_ctx *c) {
  const Product__CreateProductRequest *req = (const Product__CreateProductRequest *)c->request;
  char err[ERR_MAX];
  if (!check(c, validate_create(req, err, sizeof err), err)) return;
  const char *rid = req->request_id ? req->request_id : "";
  char request_id[PRODUCT_ID_LEN + 1];
  if (rid[0] && !check(c, validate_request_id(rid, request_id, err, sizeof err), err)) return;

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
  store_status st;
  if (rid[0]) {
    /* Per caller: the token's subject (the auth interceptor ran first). */
    char fp[STORE_FINGERPRINT_MAX + 1];
    fingerprint(p, fp);
    store_request sr = {.caller = c->sub ? c->sub : "", .id = request_id, .fingerprint = fp,
                        .now_us = p->created_us};
    product *out = call_alloc(c, sizeof(*out));
    st = store_create_once(c->env->store, p, &sr, c->arena, out);
    p = out;
  } else {
    st = store_create(c->env->store, p);
  }
  if (st != STORE_OK) {
    if (st == STORE_NOT_FOUND) {
      call_fail(c, RPC_NOT_FOUND, "the product this request_id created has been deleted");
      return;
    }
    fail_store(c, st);
    return;
  }
  reply_product(c, p);
}

/* A non-empty etag as a precondition on updated_us. One we could never
 * have issued matches no product: the call ends here, NOT_FOUND or ABORTED
 * as a well-formed stale etag would end, and false is returned. */
static bool etag_condition(call_ctx *c, const char *etag, const char *id, int64_t *updated_us) {
  if (store_etag_parse(etag, updated_us) == 0) return true;
  product *p = call_alloc(c, sizeof(*p));
  store_status st = store_get(c->env->store, id, c->arena, p);
  fail_store(c, st == STORE_OK ? STORE_CONFLICT : st);
  return false;
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
  if (req->etag && req->etag[0]) {
    if (!etag_condition(c, req->etag, req->id, &patch.match_updated_us)) return;
    patch.if_match = true;
  }
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
  store_status st;
  if (req->etag && req->etag[0]) {
    int64_t match;
    if (!etag_condition(c, req->etag, req->id, &match)) return;
    st = store_remove_if(c->env->store, req->id, match);
  } else {
    st = store_remove(c->env->store, req->id);
  }
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
