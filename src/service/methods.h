#ifndef PRODUCT_SERVICE_METHODS_H
#define PRODUCT_SERVICE_METHODS_H
/* The method table: every unary method the API port serves, with its
 * handler, message types and auth policy (policy is data beside the handler). */
#include <stddef.h>

#include "core/call.h"

extern const method_desc *const service_methods[];
extern const size_t service_methods_count;

/* The product.ProductService rows (metrics pre-create their series). */
extern const method_desc *const product_methods[];
extern const size_t product_methods_count;

#endif
