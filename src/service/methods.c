/* The method table; see methods.h. */
#include "service/methods.h"

#include "product.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "service/product_service.h"
#include "service/health.h"

#define PRODUCT_METHOD(idx, rpc, req, resp, pol)                                  \
  {                                                                                \
    .path = "/product.ProductService/" #rpc, .service = "product.ProductService",  \
    .name = #rpc, .request = &req##__descriptor, .response = &resp##__descriptor,  \
    .handler = product_##rpc, .policy = pol, .index = idx,                         \
  }

static const method_desc create_product =
    PRODUCT_METHOD(0, CreateProduct, product__create_product_request, product__product, POLICY_TOKEN);
static const method_desc get_product =
    PRODUCT_METHOD(1, GetProduct, product__get_product_request, product__product, POLICY_PUBLIC);
static const method_desc update_product =
    PRODUCT_METHOD(2, UpdateProduct, product__update_product_request, product__product, POLICY_TOKEN);
static const method_desc delete_product = PRODUCT_METHOD(
    3, DeleteProduct, product__delete_product_request, google__protobuf__empty, POLICY_ADMIN);
static const method_desc list_products = PRODUCT_METHOD(
    4, ListProducts, product__list_products_request, product__list_products_response, POLICY_PUBLIC);

const method_desc *const product_methods[] = {
    &create_product, &get_product, &update_product, &delete_product, &list_products,
};
const size_t product_methods_count = sizeof product_methods / sizeof product_methods[0];

const method_desc *const service_methods[] = {
    &create_product, &get_product, &update_product, &delete_product, &list_products,
    &health_check_method,
};
const size_t service_methods_count = sizeof service_methods / sizeof service_methods[0];
