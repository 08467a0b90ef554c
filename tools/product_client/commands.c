/* The commands: build the request message, make one unary call, print the
 * reply as one JSON object. A failed call prints "error: CODE: message" on
 * stderr and ends with exit status 1. */
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "product.pb-c.h"
#include "product_client.h"

#define SERVICE "/product.ProductService/"

void pc_print_error(rpc_code code, const char *message) {
  /* The message comes from the server: mask control characters so that it
   * cannot move the cursor or forge lines on the user's terminal. */
  const char *m = message ? message : "";
  size_t n = strlen(m);
  char *safe = malloc(n + 1);
  if (safe) {
    for (size_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)m[i];
      safe[i] = (ch < 0x20 || ch == 0x7f) ? '?' : m[i];
    }
    safe[n] = '\0';
  }
  fprintf(stderr, "error: %s: %s\n", rpc_code_name(code), safe ? safe : "");
  free(safe);
}

/* One call: pack req, send, unpack the reply as resp_desc. On failure the
 * error line is printed and *resp stays NULL. */
static int call(pc_session *s, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp) {
  *resp = NULL;
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    pc_print_error(RPC_INTERNAL, "out of memory");
    return PC_EXIT_FAILED;
  }
  protobuf_c_message_pack(req, buf);
  rpc_result r;
  int rc = rpc_client_unary(s->rpc, method, buf, len, s->md, s->n_md, s->timeout_ms, &r);
  free(buf);
  if (rc != 0 || r.code != RPC_OK) {
    pc_print_error(r.code, r.message ? r.message : "out of memory");
    rpc_result_free(&r);
    return PC_EXIT_FAILED;
  }
  *resp = protobuf_c_message_unpack(resp_desc, NULL, r.body_len, r.body);
  rpc_result_free(&r);
  if (!*resp) {
    pc_print_error(RPC_INTERNAL, "the server's reply is not a valid message");
    return PC_EXIT_FAILED;
  }
  return PC_EXIT_OK;
}

/* protobuf-c wants char * fields; the request only borrows argv strings
 * and never writes through them. */
static char *str(const char *s) { return (char *)(s ? s : ""); }

static int get_product(pc_session *s, const char *id, json_t **out) {
  Product__GetProductRequest req = PRODUCT__GET_PRODUCT_REQUEST__INIT;
  req.id = str(id);
  ProtobufCMessage *resp;
  int rc = call(s, SERVICE "GetProduct", &req.base, &product__product__descriptor, &resp);
  if (rc != PC_EXIT_OK)
    return rc;
  *out = pj_product((Product__Product *)resp);
  protobuf_c_message_free_unpacked(resp, NULL);
  return PC_EXIT_OK;
}

static int create_product(pc_session *s, const pc_command *cmd, json_t **out) {
  Product__CreateProductRequest req = PRODUCT__CREATE_PRODUCT_REQUEST__INIT;
  req.name = str(cmd->name);
  req.description = str(cmd->description);
  req.price = cmd->price;
  req.n_categories = cmd->n_categories;
  req.categories = (char **)cmd->categories;
  req.request_id = str(cmd->request_id);
  ProtobufCMessage *resp;
  int rc = call(s, SERVICE "CreateProduct", &req.base, &product__product__descriptor, &resp);
  if (rc != PC_EXIT_OK)
    return rc;
  *out = pj_product((Product__Product *)resp);
  protobuf_c_message_free_unpacked(resp, NULL);
  return PC_EXIT_OK;
}

/* Without --mask, fields not given are sent empty, which the server reads
 * as "keep". With --mask, the named fields take the values sent, given or
 * empty (so "--mask description" alone clears the description). */
static int update_product(pc_session *s, const pc_command *cmd, json_t **out) {
  Product__UpdateProductRequest req = PRODUCT__UPDATE_PRODUCT_REQUEST__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  req.id = str(cmd->id);
  req.name = str(cmd->name);
  req.description = str(cmd->description);
  req.price = cmd->price;
  req.n_categories = cmd->n_categories;
  req.categories = (char **)cmd->categories;
  if (cmd->has_mask) {
    mask.n_paths = cmd->n_mask_paths;
    mask.paths = cmd->mask_paths;
    req.update_mask = &mask;
  }
  req.etag = str(cmd->etag);
  ProtobufCMessage *resp;
  int rc = call(s, SERVICE "UpdateProduct", &req.base, &product__product__descriptor, &resp);
  if (rc != PC_EXIT_OK)
    return rc;
  *out = pj_product((Product__Product *)resp);
  protobuf_c_message_free_unpacked(resp, NULL);
  return PC_EXIT_OK;
}

static int delete_product(pc_session *s, const char *id, const char *etag, json_t **out) {
  Product__DeleteProductRequest req = PRODUCT__DELETE_PRODUCT_REQUEST__INIT;
  req.id = str(id);
  req.etag = str(etag);
  ProtobufCMessage *resp;
  int rc = call(s, SERVICE "DeleteProduct", &req.base, &google__protobuf__empty__descriptor,
                &resp);
  if (rc != PC_EXIT_OK)
    return rc;
  protobuf_c_message_free_unpacked(resp, NULL);
  *out = json_pack("{s:o,s:b}", "id", pj_string(id), "deleted", 1);
  return PC_EXIT_OK;
}

static int list_products(pc_session *s, int32_t page_size, const char *page_token,
                         const char *filter, json_t **out) {
  Product__ListProductsRequest req = PRODUCT__LIST_PRODUCTS_REQUEST__INIT;
  req.page_size = page_size;
  req.page_token = str(page_token);
  req.filter = str(filter);
  ProtobufCMessage *resp;
  int rc = call(s, SERVICE "ListProducts", &req.base,
                &product__list_products_response__descriptor, &resp);
  if (rc != PC_EXIT_OK)
    return rc;
  *out = pj_list((Product__ListProductsResponse *)resp);
  protobuf_c_message_free_unpacked(resp, NULL);
  return PC_EXIT_OK;
}

/* The seed's client, step by step: create, get, update the price, list,
 * delete. The result has one key per step. When a step fails, the steps
 * done so far are still printed (so the created product's id is not lost)
 * before the error line, and the exit status is 1. */
static int demo(pc_session *s, json_t **out) {
  static const char *const categories[] = {"Electronics", "Smartphones"};
  pc_command create = {
      .kind = PC_CMD_CREATE,
      .name = "Smartphone XYZ",
      .description = "Latest smartphone with amazing features",
      .price = 999.99,
      .categories = (const char **)categories,
      .n_categories = 2,
  };
  json_t *result = json_object();
  json_t *step = NULL;
  char *id = NULL;
  if (!result)
    goto oom;

  int rc = create_product(s, &create, &step);
  if (rc != PC_EXIT_OK)
    goto done;
  if (!step || json_object_set_new(result, "created", step) != 0)
    goto oom;
  const char *created_id = json_string_value(json_object_get(step, "id"));
  id = strdup(created_id ? created_id : "");
  if (!id)
    goto oom;

  step = NULL;
  if ((rc = get_product(s, id, &step)) != PC_EXIT_OK)
    goto done;
  if (!step || json_object_set_new(result, "got", step) != 0)
    goto oom;

  pc_command update = {.kind = PC_CMD_UPDATE, .id = id, .price = 899.99, .has_price = true};
  step = NULL;
  if ((rc = update_product(s, &update, &step)) != PC_EXIT_OK)
    goto done;
  if (!step || json_object_set_new(result, "updated", step) != 0)
    goto oom;

  step = NULL;
  if ((rc = list_products(s, 10, NULL, NULL, &step)) != PC_EXIT_OK)
    goto done;
  if (!step || json_object_set_new(result, "listed", step) != 0)
    goto oom;

  step = NULL;
  if ((rc = delete_product(s, id, NULL, &step)) != PC_EXIT_OK)
    goto done;
  if (!step || json_object_set_new(result, "deleted", step) != 0)
    goto oom;

done:
  free(id);
  if (rc != PC_EXIT_OK) {
    /* Partial result first; call() already printed the error line. */
    if (json_object_size(result) > 0 && pj_print(result, stdout) != 0)
      fprintf(stderr, "product-client: cannot write to stdout\n");
    json_decref(result);
    return rc;
  }
  *out = result;
  return PC_EXIT_OK;
oom:
  free(id);
  json_decref(result);
  pc_print_error(RPC_INTERNAL, "out of memory");
  return PC_EXIT_FAILED;
}

/* grpc.health.v1.Health/Check, as grpc_health_probe asks it: the answer is
 * printed as {"service": ..., "status": ...} and *serving says whether the
 * status is SERVING. A failed call (an unknown service is NOT_FOUND, a server
 * that is down UNAVAILABLE) is an error line, as for every other command. */
static int health(pc_session *s, const char *service, json_t **out, bool *serving) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = str(service);
  ProtobufCMessage *resp;
  int rc = call(s, "/grpc.health.v1.Health/Check", &req.base,
                &grpc__health__v1__health_check_response__descriptor, &resp);
  if (rc != PC_EXIT_OK)
    return rc;
  int status = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
  protobuf_c_message_free_unpacked(resp, NULL);
  *serving = status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &grpc__health__v1__health_check_response__serving_status__descriptor, status);
  if (v)
    *out = json_pack("{s:o,s:s}", "service", pj_string(service), "status", v->name);
  else /* a status newer than health.proto: its number */
    *out = json_pack("{s:o,s:i}", "service", pj_string(service), "status", status);
  return PC_EXIT_OK;
}

int pc_run(pc_session *s, const pc_command *cmd) {
  json_t *out = NULL;
  bool serving = true;
  int rc;
  switch (cmd->kind) {
  case PC_CMD_CREATE: rc = create_product(s, cmd, &out); break;
  case PC_CMD_GET: rc = get_product(s, cmd->id, &out); break;
  case PC_CMD_UPDATE: rc = update_product(s, cmd, &out); break;
  case PC_CMD_DELETE: rc = delete_product(s, cmd->id, cmd->etag, &out); break;
  case PC_CMD_LIST:
    rc = list_products(s, cmd->page_size, cmd->page_token, cmd->filter, &out);
    break;
  case PC_CMD_DEMO: rc = demo(s, &out); break;
  case PC_CMD_HEALTH: rc = health(s, cmd->id, &out, &serving); break;
  default: rc = PC_EXIT_USAGE; break;
  }
  if (rc != PC_EXIT_OK)
    return rc;
  if (!out) {
    pc_print_error(RPC_INTERNAL, "out of memory");
    return PC_EXIT_FAILED;
  }
  rc = serving ? PC_EXIT_OK : PC_EXIT_FAILED;
  if (pj_print(out, stdout) != 0) {
    fprintf(stderr, "product-client: cannot write to stdout\n");
    rc = PC_EXIT_FAILED;
  }
  json_decref(out);
  return rc;
}
