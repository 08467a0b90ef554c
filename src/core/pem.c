/* See pem.h. */
#include "core/pem.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/file_read.h"

int pem_read_file(const char *path, const char *what, char **out, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  *out = NULL;
  if (file_read_all(path, what, PEM_FILE_MAX, &buf, &len, err, errlen) != 0) return -1;
  if (len == 0) {
    snprintf(err, errlen, "%s %s is empty", what, path);
    goto fail;
  }
  /* OpenSSL reads up to the first NUL: what follows would be ignored
   * unseen. */
  if (memchr(buf, '\0', len)) {
    snprintf(err, errlen, "%s %s is not a PEM file (it holds a NUL byte)", what, path);
    goto fail;
  }
  *out = buf;
  return 0;
fail:
  file_read_free(buf, len);
  return -1;
}

void pem_free(char *pem) {
  if (pem) file_read_free(pem, strlen(pem));
}

int pem_check_chain(const char *pem, const char *what, const char *path, X509 **leaf, char *err,
                    size_t errlen) {
  int rc = -1, n = 0;
  if (leaf) *leaf = NULL;
  ERR_clear_error();
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509 *x;
  while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    if (n++ == 0 && leaf) *leaf = x;
    else X509_free(x);
  }
  /* The loop ends at the end of the text (no further start line) or at a
   * certificate that does not parse. */
  unsigned long e = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  if (!b) snprintf(err, errlen, "out of memory reading %s %s", what, path);
  else if (n == 0) snprintf(err, errlen, "%s %s holds no valid PEM certificate", what, path);
  else if (!clean_end)
    snprintf(err, errlen, "%s %s: certificate %d is not valid PEM (truncated?)", what, path, n + 1);
  else rc = 0;
  ERR_clear_error();
  BIO_free(b);
  if (rc != 0 && leaf && *leaf) {
    X509_free(*leaf);
    *leaf = NULL;
  }
  return rc;
}

/* Never prompts (OpenSSL's default would ask the terminal); notes that a
 * passphrase was wanted. */
static int no_passphrase(char *buf, int size, int rwflag, void *asked) {
  (void)buf;
  (void)size;
  (void)rwflag;
  *(bool *)asked = true;
  return -1;
}

int pem_check_key(const char *pem, const char *what, const char *path, X509 *cert,
                  const char *cert_path, char *err, size_t errlen) {
  int rc = -1;
  bool asked = false;
  ERR_clear_error();
  BIO *b = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &asked) : NULL;
  if (!b) snprintf(err, errlen, "out of memory reading %s %s", what, path);
  else if (!k)
    snprintf(err, errlen,
             asked ? "%s %s is encrypted: a key without a passphrase is needed"
                   : "%s %s holds no valid PEM private key",
             what, path);
  else if (cert && X509_check_private_key(cert, k) != 1)
    snprintf(err, errlen, "%s %s does not match the certificate in %s", what, path,
             cert_path ? cert_path : "?");
  else rc = 0;
  ERR_clear_error();
  EVP_PKEY_free(k);
  BIO_free(b);
  return rc;
}
