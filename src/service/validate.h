#ifndef PRODUCT_SERVICE_VALIDATE_H
#define PRODUCT_SERVICE_VALIDATE_H
/* Field rules of product-server(8) ("Statuses for bad input", "UpdateProduct with a
 * field mask"). Every function returns 0 when the value passes, non-zero
 * otherwise with a one-line, client-facing message in err (the handler
 * answers INVALID_ARGUMENT with it). Messages never echo more than a short,
 * already UTF-8-checked prefix of what the client sent. A NULL string counts
 * as "". Strings are also checked for UTF-8 here, so a handler that skipped
 * wire_check still cannot store an invalid one. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "product.pb-c.h"
#include "store/store.h"

#define VALIDATE_NAME_MAX 256         /* bytes */
#define VALIDATE_DESCRIPTION_MAX 4096 /* bytes */
#define VALIDATE_CATEGORIES_MAX 32    /* elements */
#define VALIDATE_CATEGORY_MAX 64      /* bytes, and at least 1 */
#define VALIDATE_PAGE_SIZE_DEFAULT 10
#define VALIDATE_PAGE_SIZE_MAX 100

/* Non-empty (get, update, delete). */
int validate_id(const char *id, char *err, size_t errlen);
/* <= 256 bytes; with `required` (create, a masked update) also non-empty. */
int validate_name(const char *name, bool required, char *err, size_t errlen);
/* <= 4096 bytes; may be empty. */
int validate_description(const char *description, char *err, size_t errlen);
/* Finite and >= 0 (-0.0 passes). */
int validate_price(double price, char *err, size_t errlen);
/* At most 32, each 1..64 bytes. */
int validate_categories(char *const *categories, size_t n, char *err, size_t errlen);

/* CreateProduct's request_id when not empty: a UUID in its 36-character
 * text form (8-4-4-4-12 hex digits, either case); out gets it in lower case,
 * so both spellings name one request. */
int validate_request_id(const char *request_id, char out[PRODUCT_ID_LEN + 1], char *err,
                        size_t errlen);

/* Every rule for a CreateProduct request (name required). */
int validate_create(const Product__CreateProductRequest *req, char *err, size_t errlen);

/* ListProducts' page_size: below 0 is an error, 0 means 10, above 100 is
 * 100; *effective gets the size to use. */
int validate_page_size(int32_t page_size, size_t *effective, char *err, size_t errlen);

/* Turns an UpdateProduct request into the patch the store applies, checking
 * everything that can be checked without the stored product (so a bad mask
 * on an unknown id is INVALID_ARGUMENT, not NOT_FOUND): the id, then the mask,
 * then the fields the patch takes.
 * - update_mask with paths: exactly the named fields (name, description,
 *   price, categories; a repeated path counts once; any other path is an
 *   error) take the request's values, empty ones included; a masked name ""
 *   is an error (the product must stay valid), a masked price 0 is fine.
 * - no update_mask, or one with no paths: the seed's rule, non-empty name and
 *   description, a non-zero price and a non-empty category list replace.
 * On success *out borrows the request's strings (valid while req lives) and
 * out->updated_us is 0: the handler sets it. On failure *out is zeroed. */
int validate_update_patch(const Product__UpdateProductRequest *req, product_patch *out, char *err,
                          size_t errlen);

#endif
