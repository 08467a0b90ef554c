#ifndef PRODUCT_TRANSPORT_DESCRIPTORS_H
#define PRODUCT_TRANSPORT_DESCRIPTORS_H
/* The schema the server serves, as protoc compiled it: a FileDescriptorSet
 * (protoc --include_imports) embedded in the binary at build time, indexed
 * for server reflection: which file defines a symbol, which files a file
 * needs, which services exist. Immutable once built, so any thread may read
 * it without a lock. No grpc_* type here: the transport does the wire. */
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct descriptors descriptors;

/* Parses a serialized FileDescriptorSet (the bytes are copied). Non-zero on
 * malformed input, a dependency the set does not hold, or out of memory. */
int descriptors_create(const uint8_t *set, size_t len, descriptors **out);
void descriptors_destroy(descriptors *d);

/* The index of the set embedded in the binary (product.proto, health,
 * reflection and their imports); built on first use and kept until exit.
 * NULL only when memory ran out. */
const descriptors *descriptors_builtin(void);

/* Every service the set defines, fully qualified ("product.ProductService"),
 * in the order of the set. */
size_t descriptors_service_count(const descriptors *d);
const char *descriptors_service_name(const descriptors *d, size_t i);

/* The file named `name` ("product.proto"), or -1. */
int descriptors_find_file(const descriptors *d, const char *name);

/* The file that defines a fully qualified symbol: a service, a method
 * ("pkg.Service.Method"), a message (nested ones too), a field, an enum, an
 * enum value or an extension; or -1. A leading '.' is accepted. */
int descriptors_find_symbol(const descriptors *d, const char *symbol);

/* Whether symbol names a message type (not a service, field, ...). */
bool descriptors_is_message(const descriptors *d, const char *symbol);

/* The serialized FileDescriptorProtos a client needs to build every type of
 * `file`: the file itself first, then its transitive dependencies, each
 * once. *out points into d (valid while d lives); returns how many. */
size_t descriptors_closure(const descriptors *d, int file, const ProtobufCBinaryData **out);

#endif
