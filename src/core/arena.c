/* Bump allocator in chained blocks; see arena.h. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
/* No call needs more in one piece (requests are capped at 4 MiB); larger asks
 * are bugs or hostile sizes and fail cleanly instead of reaching malloc. */
#define ARENA_MAX_ALLOC ((size_t)64 << 20)

typedef struct arena_block {
  struct arena_block *next;
  size_t size; /* usable bytes after the header */
  size_t used;
} arena_block;

struct arena {
  arena_block *head;  /* current block (first in the chain) */
  arena_block *first; /* the block kept across resets */
  size_t total_used;
  ProtobufCAllocator pb;
};

static size_t align_up(size_t n) { return (n + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1); }

static size_t header_size(void) { return align_up(sizeof(arena_block)); }

static arena_block *block_new(size_t size) {
  arena_block *b = malloc(header_size() + size);
  if (!b) return NULL;
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

static void *pb_alloc(void *data, size_t size) { return arena_alloc(data, size); }
static void pb_free(void *data, void *ptr) {
  (void)data;
  (void)ptr; /* released with the arena */
}

arena *arena_create(size_t first_block) {
  arena *a = malloc(sizeof(*a));
  if (!a) return NULL;
  a->first = block_new(first_block ? align_up(first_block) : 4096);
  if (!a->first) {
    free(a);
    return NULL;
  }
  a->head = a->first;
  a->total_used = 0;
  a->pb.alloc = pb_alloc;
  a->pb.free = pb_free;
  a->pb.allocator_data = a;
  return a;
}

static void free_extra_blocks(arena *a) {
  arena_block *b = a->head;
  while (b && b != a->first) {
    arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = a->first;
}

void arena_destroy(arena *a) {
  if (!a) return;
  free_extra_blocks(a);
  free(a->first);
  free(a);
}

void arena_reset(arena *a) {
  free_extra_blocks(a);
  a->first->used = 0;
  a->first->next = NULL;
  a->total_used = 0;
}

void *arena_alloc(arena *a, size_t size) {
  if (size == 0) size = 1;
  if (size > ARENA_MAX_ALLOC) return NULL;
  size = align_up(size);
  arena_block *b = a->head;
  if (b->size - b->used < size) {
    size_t want = b->size * 2;
    if (want < size) want = size;
    if (want > (1u << 20) && size <= (1u << 20)) want = 1u << 20;
    arena_block *nb = block_new(want);
    if (!nb) return NULL;
    nb->next = a->head;
    a->head = nb;
    b = nb;
  }
  void *p = (char *)b + header_size() + b->used;
  b->used += size;
  a->total_used += size;
  return p;
}

void *arena_calloc(arena *a, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = arena_alloc(a, n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

char *arena_strndup(arena *a, const char *s, size_t len) {
  if (len == SIZE_MAX) return NULL;
  char *p = arena_alloc(a, len + 1);
  if (!p) return NULL;
  if (len) memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

void arena_pb_allocator(arena *a, ProtobufCAllocator *out) { *out = a->pb; }

size_t arena_used(const arena *a) { return a->total_used; }
