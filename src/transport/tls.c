/* See tls.h. */
#include "transport/tls.h"

#include <grpc/grpc_security.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, const char *what, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot read %s %s", what, path);
    return NULL;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > (1u << 20)) {
        snprintf(err, errlen, "%s %s is too large", what, path);
        goto fail;
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto fail;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, 4096, f);
    len += n;
    if (n < 4096) break;
  }
  if (ferror(f)) {
    snprintf(err, errlen, "cannot read %s %s", what, path);
    goto fail;
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
fail:
  fclose(f);
  free(buf);
  return NULL;
}

static void free_secret(char *s) {
  if (!s) return;
  OPENSSL_cleanse(s, strlen(s));
  free(s);
}

/* Whether cert_pem's first certificate and key_pem's key form a pair. */
static int check_pair(const char *cert_pem, const char *key_pem, const config *cfg, char *err,
                      size_t errlen) {
  int rc = -1;
  BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
  X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  if (!x) snprintf(err, errlen, "no PEM certificate in %s", cfg->tls_cert);
  else if (!k) snprintf(err, errlen, "no PEM private key in %s", cfg->tls_key);
  else if (X509_check_private_key(x, k) != 1)
    snprintf(err, errlen, "the key %s does not match the certificate %s", cfg->tls_key, cfg->tls_cert);
  else rc = 0;
  ERR_clear_error();
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cb);
  BIO_free(kb);
  return rc;
}

int tls_server_credentials(const config *cfg, grpc_server_credentials **out, tls_reloader **reloader,
                           char *err, size_t errlen) {
  *reloader = NULL;
  if (cfg->insecure && !cfg->tls_cert) {
    *out = grpc_insecure_server_credentials_create();
    return *out ? 0 : -1;
  }
  int rc = -1;
  char *cert = NULL, *key = NULL, *ca = NULL;
  cert = read_file(cfg->tls_cert, "TLS certificate", err, errlen);
  if (!cert) goto done;
  key = read_file(cfg->tls_key, "TLS key", err, errlen);
  if (!key) goto done;
  if (cfg->tls_client_ca) {
    ca = read_file(cfg->tls_client_ca, "client CA", err, errlen);
    if (!ca) goto done;
  }
  if (check_pair(cert, key, cfg, err, errlen) != 0) goto done;
  grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
  grpc_ssl_server_credentials_options *opts = grpc_ssl_server_credentials_create_options_using_config(
      ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
         : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
      grpc_ssl_server_certificate_config_create(ca, &pair, 1));
  *out = grpc_ssl_server_credentials_create_with_options(opts);
  if (!*out) {
    snprintf(err, errlen, "cannot create TLS credentials");
    goto done;
  }
  rc = 0;
done:
  free(cert);
  free_secret(key);
  free(ca);
  return rc;
}

void tls_reloader_destroy(tls_reloader *r) { (void)r; }
