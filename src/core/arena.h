#ifndef PRODUCT_CORE_ARENA_H
#define PRODUCT_CORE_ARENA_H
/* Per-call memory. Everything a call allocates comes from its arena and is
 * released in one place (arena_reset/arena_destroy) however the call ends:
 * the PostgreSQL memory-context model that makes the panic path leak-free. */
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct arena arena;

/* A new arena whose first block holds at least first_block bytes; NULL on OOM. */
arena *arena_create(size_t first_block);
void arena_destroy(arena *a);

/* Releases every allocation but keeps the first block for reuse. */
void arena_reset(arena *a);

/* 16-byte aligned memory, or NULL when out of memory (never panics). */
void *arena_alloc(arena *a, size_t size);
void *arena_calloc(arena *a, size_t n, size_t size);
/* A NUL-terminated copy of s[0..len); NULL on OOM. */
char *arena_strndup(arena *a, const char *s, size_t len);
char *arena_strdup(arena *a, const char *s);

/* A protobuf-c allocator drawing from the arena (free is a no-op), so decoded
 * requests die with the call. */
void arena_pb_allocator(arena *a, ProtobufCAllocator *out);

/* Bytes handed out since the last reset (for tests and metrics). */
size_t arena_used(const arena *a);

#endif
