#ifndef PRODUCT_STORE_FILTER_NODE_H
#define PRODUCT_STORE_FILTER_NODE_H
/* The parsed filter tree, shared by filter.c (parse, match) and filter_sql.c
 * (SQL). Private to the filter module: backends use filter.h only. */
#include <stddef.h>
#include <stdint.h>

#include "store/filter.h"

typedef enum filter_kind { FILTER_OR, FILTER_AND, FILTER_NOT, FILTER_CMP } filter_kind;

typedef enum filter_field {
  FILTER_FIELD_PRICE,
  FILTER_FIELD_NAME,
  FILTER_FIELD_DESCRIPTION,
  FILTER_FIELD_CATEGORIES,
  FILTER_FIELD_CREATED_AT,
  FILTER_FIELD_UPDATED_AT,
} filter_field;

typedef enum filter_op { FILTER_EQ, FILTER_NE, FILTER_LT, FILTER_LE, FILTER_GT, FILTER_GE, FILTER_HAS } filter_op;

/* OR and AND are n-ary (operands linked through `next`), so a long chain
 * costs no recursion; NOT has one operand; NOT NOT x is folded to x by the
 * parser, so the tree is at most ~3 nodes deep per parenthesis level. */
struct filter {
  filter_kind kind;
  filter *child; /* OR/AND: first operand; NOT: the operand */
  filter *next;  /* next operand of the enclosing OR/AND */
  /* FILTER_CMP: */
  filter_field field;
  filter_op op;
  double number;       /* price */
  int64_t us;          /* created_at/updated_at, microseconds since the epoch */
  char *text;          /* name/description/categories, decoded, NUL-free */
  size_t text_len;
  char *folded;        /* ':' on name/description: ASCII-lower-cased text */
  uint32_t *kmp;       /* ':' on name/description: KMP failure table of folded */
};

#endif
