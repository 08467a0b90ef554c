#ifndef PRODUCT_CORE_PEER_H
#define PRODUCT_CORE_PEER_H
/* The transport peer text as the gRPC core writes it ("ipv4:10.0.0.7:5123",
 * "ipv6:[::1]:5123", and from the 1.51 core "ipv6:%5B::1%5D:5123"), read
 * once here for the rate limits and the spans. */
#include <stdbool.h>
#include <stddef.h>

/* The host of an ipv4: or ipv6: peer, without its port and brackets (plain
 * or percent-encoded; a zone stays as written): *host points into peer,
 * *len bytes. False, and nothing set, for any other peer (unix:, NULL). */
bool peer_host(const char *peer, const char **host, size_t *len);

#endif
