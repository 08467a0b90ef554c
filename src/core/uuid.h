#ifndef PRODUCT_CORE_UUID_H
#define PRODUCT_CORE_UUID_H
/* Random (version 4) UUIDs from OpenSSL's CSPRNG. */

#define UUID_TEXT_LEN 36

/* Writes the canonical lower-case form and a NUL into out[37]; non-zero when
 * the random generator fails. */
int uuid_v4(char out[UUID_TEXT_LEN + 1]);

#endif
