#ifndef PRODUCT_TRANSPORT_TLS_H
#define PRODUCT_TRANSPORT_TLS_H
/* Server credentials for the API port: plaintext with --insecure, else TLS
 * (1.2 and 1.3 only) from --tls-cert/--tls-key, and mutual TLS with
 * --tls-client-ca. Files are checked at start with precise errors (the core
 * would only say "port 0").
 *
 * Rotation: the credentials use a certificate-config fetcher that the core
 * calls at the start of every TLS handshake, on its own threads. At most once
 * a second it stat()s the files; when one changed (inode, size, mtime, ctime)
 * it loads and checks the new material. A good pair is handed to the core for
 * new connections (open connections keep theirs) and logged with its serial
 * and subject; a bad one (half-written, mismatched, unreadable) is logged
 * once, with the reason, and the last good pair stays in use.
 *
 * Session tickets: OpenSSL seals them with random keys of the core's
 * SSL_CTX. The fetcher hands the current material to the core again once
 * an hour, so that a new SSL_CTX with new keys serves the handshakes after
 * it: a ticket resumes for at most an hour after its key was made. */
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/log.h"

struct grpc_server_credentials;
typedef struct tls_reloader tls_reloader;

/* On success *out is a new reference for rpc_server_create, and *reloader
 * (NULL for plaintext) keeps the certificate files watched for rotation. It
 * must outlive the server that uses *out (destroy it after the server). */
int tls_server_credentials(const config *cfg, struct grpc_server_credentials **out,
                           tls_reloader **reloader, char *err, size_t errlen);
void tls_reloader_destroy(tls_reloader *r);

/* Adds the loaded certificate to a log line (the start-up line):
 * tls_subject, tls_serial, tls_not_after, mtls, and tls_expired when so. */
void tls_reloader_describe(tls_reloader *r, log_line *l);

/* ---- for tests ---- */

/* How long one set of session-ticket keys serves (default one hour). */
void tls_reloader_set_ticket_key_lifetime_ms(tls_reloader *r, int64_t ms);
/* Minimum time between two looks at the files (default 1000 ms). */
void tls_reloader_set_interval_ms(tls_reloader *r, int64_t ms);
/* Runs the fetcher as the core does at a handshake: 1 when it handed out a
 * new certificate config, 0 when unchanged (a broken replacement included).
 * Never from the server: it takes the config the core would have received. */
int tls_reloader_poll(tls_reloader *r);
/* The serial (upper-case hex) of the certificate last handed out. */
void tls_reloader_serial(tls_reloader *r, char *out, size_t outlen);

#endif
