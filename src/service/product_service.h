#ifndef PRODUCT_SERVICE_PRODUCT_SERVICE_H
#define PRODUCT_SERVICE_PRODUCT_SERVICE_H
/* product.ProductService handlers. Each reads a decoded request from
 * c->request and ends with call_reply or call_fail; none checks roles (the
 * auth interceptor does, from the method table). */
#include "core/call.h"

void product_CreateProduct(call_ctx *c);
void product_GetProduct(call_ctx *c);
void product_UpdateProduct(call_ctx *c);
void product_DeleteProduct(call_ctx *c);
void product_ListProducts(call_ctx *c);

#endif
