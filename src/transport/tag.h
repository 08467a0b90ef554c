#ifndef PRODUCT_TRANSPORT_TAG_H
#define PRODUCT_TRANSPORT_TAG_H
/* A completion-queue tag: the first member of every per-batch record, so a
 * worker can dispatch an event without knowing what it belongs to. Recover
 * the owner with container_of. */
#include <stdbool.h>
#include <stddef.h>

typedef struct rpc_tag {
  void (*fn)(struct rpc_tag *self, bool ok);
} rpc_tag;

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
