#ifndef PRODUCT_GUARD_TLS_TUNE_H
#define PRODUCT_GUARD_TLS_TUNE_H
/* Per-connection TLS settings the 1.51 core's C API does not expose.
 *
 * The core builds its server SSL_CTX itself and, with OpenSSL 3, restricts
 * key exchange to P-256 alone (SSL_CTX_set1_groups, one group). Clients
 * that offer X25519 first (OpenSSL, Go, Python, h2load, browsers) then get
 * a HelloRetryRequest and a P-256 exchange, whose peer-key check and point
 * multiplications are most of the server's handshake CPU
 * (docs/performance.md). It also lets OpenSSL send two session tickets per
 * full handshake, where one is enough for a client that reconnects.
 *
 * product-server defines SSL_set_accept_state, which the core calls once on
 * every server-side SSL before any byte of the handshake (tsi's
 * create_tsi_ssl_handshaker); it calls the real one (dlsym RTLD_NEXT), then
 * sets on that SSL: key-exchange groups X25519 then P-256 (both 128-bit
 * security; P-256 stays for clients without X25519), one session ticket per
 * handshake, and TLS 1.3 as the minimum when asked. Only product-server and
 * this layer's tests link it; tls_tune_start() proves the hook is in the
 * path (the dynamic linker binds the core's calls to it, and the settings
 * land on an SSL) and fails otherwise. */
#include <stdbool.h>
#include <stddef.h>

#define TLS_TUNE_GROUPS "X25519:P-256"
#define TLS_TUNE_TICKETS 1

typedef struct tls_tune_opts {
  bool tls13_only; /* TLS 1.3 as the minimum version (the core sets 1.2) */
} tls_tune_opts;

/* Before the TLS servers are created. 0 when the hook is in the path and
 * applies the settings; else -1 and `err` says what is missing. */
int tls_tune_start(const tls_tune_opts *o, char *err, size_t errlen);

/* Server-side SSLs the settings were applied to, and those where OpenSSL
 * refused one (the core's defaults then stay on that connection). */
unsigned long tls_tune_applied(void);
unsigned long tls_tune_failed(void);

#endif
