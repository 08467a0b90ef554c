#ifndef PRODUCT_TRANSPORT_TLS_H
#define PRODUCT_TRANSPORT_TLS_H
/* Server credentials for the API port: plaintext with --insecure, else TLS
 * (1.2 and 1.3 only) from --tls-cert/--tls-key, and mutual TLS with
 * --tls-client-ca. Files are checked at start with precise errors (the core
 * would only say "port 0"). */
#include <stddef.h>

#include "config/config.h"

struct grpc_server_credentials;
typedef struct tls_reloader tls_reloader;

/* On success *out is a new reference for rpc_server_create, and *reloader
 * (NULL for plaintext) keeps the certificate files watched for rotation. */
int tls_server_credentials(const config *cfg, struct grpc_server_credentials **out,
                           tls_reloader **reloader, char *err, size_t errlen);
void tls_reloader_destroy(tls_reloader *r);

#endif
