/* See tls.h. TLS 1.2 as the minimum and 1.3 as the maximum are the core's
 * own bounds for ssl server credentials in 1.51 (the C API has no setter for
 * them); tests/integration/test_tls.py checks that TLS 1.1 is refused. */
#include "transport/tls.h"

#include <grpc/grpc_security.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/pem.h"
#include "core/file_watch.h"

#define TLS_DEFAULT_INTERVAL_MS 1000
/* Session-ticket keys live as long as the core's SSL_CTX, which OpenSSL
 * gives random ones: the same material is handed to the core again this
 * often, so that a new SSL_CTX (new keys) serves the handshakes after it. */
#define TLS_TICKET_KEY_LIFETIME_MS (60 * 60 * 1000)

enum { F_CERT, F_KEY, F_CA, F_COUNT };
static const char *const file_what[F_COUNT] = {"TLS certificate", "TLS key", "client CA"};

/* Facts about the certificate in use, for logs. */
typedef struct cert_info {
  char subject[256];
  char serial[96];
  char not_after[32];
  bool expired;
} cert_info;

/* A checked certificate chain, key and (optional) client CA as read. */
typedef struct tls_material {
  char *pem[F_COUNT]; /* pem[F_KEY] is wiped when freed */
  cert_info info;
  unsigned char digest[32]; /* of all three, to skip reloads of equal content */
} tls_material;

struct tls_reloader {
  pthread_mutex_t mu; /* the fetcher runs on core threads */
  char *path[F_COUNT]; /* path[F_CA] is NULL without mutual TLS */
  file_watch *watch; /* the three files, looked at once a second at most */
  unsigned char digest[32];
  cert_info info; /* of the material last handed to the core */
  tls_material cur; /* that material, handed again to rotate ticket keys */
  int64_t handed_ns; /* when a config was last handed to the core */
  int64_t ticket_key_lifetime_ns;
  /* The start-up config: the core takes it at its first fetch (when the
   * port is added); NULL afterwards. */
  grpc_ssl_server_certificate_config *pending;
};

/* ----------------------------------------------------------- material --- */

static void cert_facts(X509 *x, cert_info *ci) {
  memset(ci, 0, sizeof *ci);
  BIO *b = BIO_new(BIO_s_mem());
  if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
    int n = BIO_read(b, ci->subject, (int)sizeof ci->subject - 1);
    ci->subject[n > 0 ? n : 0] = '\0';
  }
  BIO_free(b);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  snprintf(ci->serial, sizeof ci->serial, "%s", hex ? hex : "?");
  OPENSSL_free(hex);
  BN_free(bn);
  struct tm tm;
  const ASN1_TIME *na = X509_get0_notAfter(x);
  if (ASN1_TIME_to_tm(na, &tm) == 1) strftime(ci->not_after, sizeof ci->not_after, "%Y-%m-%dT%H:%M:%SZ", &tm);
  ci->expired = X509_cmp_current_time(na) < 0;
}

static void material_free(tls_material *m) {
  for (int i = 0; i < F_COUNT; i++) {
    pem_free(m->pem[i]);
    m->pem[i] = NULL;
  }
}

/* Reads and checks the files: the chain parses, the key parses and belongs
 * to the first certificate, the client CA parses. One line in err says
 * which file and why; it never holds key material. */
static int material_load(char *const path[F_COUNT], tls_material *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  int rc = -1;
  X509 *leaf = NULL;
  EVP_MD_CTX *md = NULL;
  for (int i = 0; i < F_COUNT; i++)
    if (path[i] && pem_read_file(path[i], file_what[i], &m->pem[i], err, errlen) != 0) goto done;
  if (pem_check_chain(m->pem[F_CERT], file_what[F_CERT], path[F_CERT], &leaf, err, errlen) != 0 ||
      pem_check_key(m->pem[F_KEY], file_what[F_KEY], path[F_KEY], leaf, path[F_CERT], err,
                    errlen) != 0)
    goto done;
  if (path[F_CA] &&
      pem_check_chain(m->pem[F_CA], file_what[F_CA], path[F_CA], NULL, err, errlen) != 0)
    goto done;
  cert_facts(leaf, &m->info);
  md = EVP_MD_CTX_new();
  unsigned int dlen = 0;
  bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
  for (int i = 0; ok && i < F_COUNT; i++) {
    const char *p = m->pem[i] ? m->pem[i] : "";
    ok = EVP_DigestUpdate(md, p, strlen(p) + 1) == 1; /* the NUL separates them */
  }
  if (!ok || EVP_DigestFinal_ex(md, m->digest, &dlen) != 1 || dlen != sizeof m->digest) {
    snprintf(err, errlen, "cannot hash the TLS material");
    goto done;
  }
  rc = 0;
done:
  EVP_MD_CTX_free(md);
  X509_free(leaf);
  if (rc != 0) material_free(m);
  return rc;
}

/* A core config of the material; the core copies the strings. The 1.51 core
 * asserts (and aborts) when a fetched config has no root certificates, even
 * when it never asks clients for a certificate; without mutual TLS we give it
 * our own chain, which is never used: no client certificate is requested. */
static grpc_ssl_server_certificate_config *material_config(const tls_material *m) {
  grpc_ssl_pem_key_cert_pair pair = {.private_key = m->pem[F_KEY], .cert_chain = m->pem[F_CERT]};
  const char *roots = m->pem[F_CA] ? m->pem[F_CA] : m->pem[F_CERT];
  return grpc_ssl_server_certificate_config_create(roots, &pair, 1);
}

/* --------------------------------------------------------- rotation --- */

static void log_reload(log_level level, const char *msg, const cert_info *ci, const char *why) {
  log_line l;
  log_line_begin(&l, level, msg);
  if (ci) {
    log_line_str(&l, "tls_subject", ci->subject);
    log_line_str(&l, "tls_serial", ci->serial);
    log_line_str(&l, "tls_not_after", ci->not_after);
    if (ci->expired) log_line_bool(&l, "tls_expired", true);
  }
  if (why) log_line_str(&l, "reason", why);
  log_line_emit(&l);
}

/* A new config of the current material when the ticket keys are due:
 * the core then builds a new SSL_CTX, whose fresh random ticket keys serve
 * the handshakes that follow; tickets sealed with the old keys no longer
 * resume (a full handshake instead). */
static grpc_ssl_server_certificate_config *rotate_if_due(tls_reloader *r, int64_t now) {
  if (now - r->handed_ns < r->ticket_key_lifetime_ns) return NULL;
  grpc_ssl_server_certificate_config *c = material_config(&r->cur);
  if (c) r->handed_ns = now;
  return c; /* out of memory: again at the next handshake */
}

/* The core calls this at the start of every handshake (under its own lock
 * per port, but on any core thread): it must be cheap when nothing changed.
 * A broken replacement is reported as UNCHANGED, not FAIL, so that the core
 * does not log an error per handshake; we log it once per file change. */
static grpc_ssl_certificate_config_reload_status fetch(void *user_data,
                                                       grpc_ssl_server_certificate_config **config) {
  tls_reloader *r = user_data;
  grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  *config = NULL;
  pthread_mutex_lock(&r->mu);
  int64_t now = clock_mono_ns();
  if (r->pending) {
    *config = r->pending;
    r->pending = NULL;
    r->handed_ns = now;
    st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
    goto out;
  }
  /* Signatures are taken before reading: a write during the read is seen next time. */
  if (!file_watch_changed(r->watch, now)) {
    if ((*config = rotate_if_due(r, now)) != NULL) st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
    goto out;
  }
  tls_material m;
  char why[512];
  if (material_load(r->path, &m, why, sizeof why) != 0) {
    log_reload(LOG_WARN, "TLS certificate reload failed; keeping the previous certificate",
               &r->info, why);
    goto out;
  }
  if (memcmp(m.digest, r->digest, sizeof m.digest) != 0) {
    grpc_ssl_server_certificate_config *c = material_config(&m);
    if (c) {
      memcpy(r->digest, m.digest, sizeof r->digest);
      r->info = m.info;
      material_free(&r->cur);
      r->cur = m; /* owned by r now */
      memset(&m, 0, sizeof m);
      r->handed_ns = now;
      *config = c;
      st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
      log_reload(LOG_INFO, "TLS certificate reloaded", &r->info, NULL);
    } else {
      file_watch_rearm(r->watch); /* out of memory: try again next time */
    }
  } else if ((*config = rotate_if_due(r, now)) != NULL) {
    st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
  }
  material_free(&m);
out:
  pthread_mutex_unlock(&r->mu);
  return st;
}

/* ------------------------------------------------------------ public --- */

void tls_reloader_destroy(tls_reloader *r) {
  if (!r) return;
  if (r->pending) grpc_ssl_server_certificate_config_destroy(r->pending);
  for (int i = 0; i < F_COUNT; i++) free(r->path[i]);
  material_free(&r->cur);
  file_watch_destroy(r->watch);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static tls_reloader *reloader_create(const config *cfg) {
  tls_reloader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  pthread_mutex_init(&r->mu, NULL);
  r->ticket_key_lifetime_ns = (int64_t)TLS_TICKET_KEY_LIFETIME_MS * 1000000;
  const char *p[F_COUNT] = {cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca};
  for (int i = 0; i < F_COUNT; i++) {
    if (p[i] && !(r->path[i] = strdup(p[i]))) {
      tls_reloader_destroy(r);
      return NULL;
    }
  }
  return r;
}

int tls_server_credentials(const config *cfg, grpc_server_credentials **out, tls_reloader **reloader,
                           char *err, size_t errlen) {
  *reloader = NULL;
  *out = NULL;
  if (!cfg->tls_cert) { /* config allows this only with --insecure */
    *out = grpc_insecure_server_credentials_create();
    if (!*out) snprintf(err, errlen, "cannot create plaintext credentials");
    return *out ? 0 : -1;
  }
  tls_reloader *r = reloader_create(cfg);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* Watched from before the first read, as at every reload. */
  r->watch = file_watch_create((const char *const *)r->path, F_COUNT, TLS_DEFAULT_INTERVAL_MS);
  if (!r->watch) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if (material_load(r->path, &r->cur, err, errlen) != 0) goto fail;
  r->info = r->cur.info;
  memcpy(r->digest, r->cur.digest, sizeof r->digest);
  r->pending = material_config(&r->cur);
  if (!r->pending) {
    snprintf(err, errlen, "cannot create the TLS certificate config");
    goto fail;
  }
  file_watch_set_interval_ms(r->watch, TLS_DEFAULT_INTERVAL_MS);
  grpc_ssl_server_credentials_options *opts =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          r->path[F_CA] ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                        : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
          fetch, r);
  *out = opts ? grpc_ssl_server_credentials_create_with_options(opts) : NULL;
  if (!*out) {
    snprintf(err, errlen, "cannot create TLS credentials");
    goto fail;
  }
  *reloader = r;
  return 0;
fail:
  tls_reloader_destroy(r);
  return -1;
}

void tls_reloader_describe(tls_reloader *r, log_line *l) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  log_line_str(l, "tls_subject", r->info.subject);
  log_line_str(l, "tls_serial", r->info.serial);
  log_line_str(l, "tls_not_after", r->info.not_after);
  if (r->info.expired) log_line_bool(l, "tls_expired", true);
  log_line_bool(l, "mtls", r->path[F_CA] != NULL);
  pthread_mutex_unlock(&r->mu);
}

void tls_reloader_set_ticket_key_lifetime_ms(tls_reloader *r, int64_t ms) {
  pthread_mutex_lock(&r->mu);
  r->ticket_key_lifetime_ns = ms * 1000000;
  pthread_mutex_unlock(&r->mu);
}

void tls_reloader_set_interval_ms(tls_reloader *r, int64_t ms) {
  pthread_mutex_lock(&r->mu);
  file_watch_set_interval_ms(r->watch, ms);
  pthread_mutex_unlock(&r->mu);
}

int tls_reloader_poll(tls_reloader *r) {
  grpc_ssl_server_certificate_config *c = NULL;
  grpc_ssl_certificate_config_reload_status st = fetch(r, &c);
  if (c) grpc_ssl_server_certificate_config_destroy(c);
  return st == GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

void tls_reloader_serial(tls_reloader *r, char *out, size_t outlen) {
  pthread_mutex_lock(&r->mu);
  snprintf(out, outlen, "%s", r->info.serial);
  pthread_mutex_unlock(&r->mu);
}
