#ifndef PRODUCT_TRANSPORT_H2_GUARD_H
#define PRODUCT_TRANSPORT_H2_GUARD_H
/* HTTP/2 frame limits in front of the 1.51 core's parser (docs/http2-limits.md).
 *
 * The server executable defines accept4, recvmsg, read, close and SSL_read;
 * the dynamic linker binds libgrpc's calls to these, which call the real
 * ones (dlsym RTLD_NEXT) and feed what a client sent on a connection
 * accepted on one of our listeners to an h2_frames counter: decrypted bytes
 * from SSL_read for TLS listeners, socket bytes from recvmsg/read for
 * plaintext ones. Everything else passes through untouched. A connection
 * over a limit has every later read fail (ECONNRESET, or an OpenSSL error
 * for TLS), so the core closes it itself. */
#include <stdbool.h>

#include "transport/h2_frames.h"

/* Called once per closed connection, on the thread that read; peer is
 * "ipv4:127.0.0.1:40918" or "" when unknown (TLS). */
typedef void (*h2_guard_report_fn)(void *ctx, const char *peer, h2_verdict why);

/* Before the servers start. Sizes the per-descriptor table from
 * RLIMIT_NOFILE. Non-zero on out of memory. */
int h2_guard_start(const h2_limits *lim, h2_guard_report_fn report, void *ctx);

/* A listener of ours bound to `port`: connections accepted on it are
 * counted. Up to 8 listeners. */
void h2_guard_listen(int port, bool tls);

/* Everything passes through from now on. */
void h2_guard_stop(void);

#endif
