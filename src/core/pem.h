#ifndef PRODUCT_CORE_PEM_H
#define PRODUCT_CORE_PEM_H
/* The process's one check of PEM material (the server's certificate, key
 * and client CA; the outbound client's CA, certificate and key). The gRPC
 * core notices a bad PEM only at the first handshake, as an opaque
 * failure, so both read and parse the files first and name the bad one.
 * Every message is one line naming the file (`what` and path) and why;
 * never key material. Nothing here ever prompts for a passphrase. */
#include <openssl/x509.h>
#include <stddef.h>

#define PEM_FILE_MAX (1u << 20)

/* Reads a PEM file (core/file_read.h: a regular file, at most
 * PEM_FILE_MAX), NUL-terminated, for pem_free. An empty file, or one that
 * holds a NUL byte, is refused. */
int pem_read_file(const char *path, const char *what, char **out, char *err, size_t errlen);
/* Wipes (the file may hold a key) and frees; NULL is a no-op. */
void pem_free(char *pem);

/* Every certificate of a chain parses, and there is at least one; a bad
 * one after good ones (a half-written file) is named by its position.
 * With leaf, *leaf gets the first certificate (for X509_free). */
int pem_check_chain(const char *pem, const char *what, const char *path, X509 **leaf, char *err,
                    size_t errlen);
/* The private key parses, and is not encrypted; with cert, it belongs to
 * that certificate (cert_path names it in the message). */
int pem_check_key(const char *pem, const char *what, const char *path, X509 *cert,
                  const char *cert_path, char *err, size_t errlen);

#endif
