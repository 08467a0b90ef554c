/* libFuzzer target for page tokens (auth/page_token.c).
 * Input as a token: decoding must never crash, and whatever decodes must be
 * exactly the token the encoder makes for that cursor (one canonical form).
 * Input as a cursor and filter: encode then decode must round-trip. Both
 * for the single-secret format and the key-set one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/page_token.h"

/* A fixed test key: no secret of any deployment. */
static const unsigned char FUZZ_SECRET[] = "fuzz-page-token-key-0123456789abcdef";
static const char FILTER[] = "price > 1";

static page_key *key(void) {
  static page_key *k;
  if (!k) k = page_key_create(FUZZ_SECRET, sizeof(FUZZ_SECRET) - 1);
  if (!k) abort();
  return k;
}

/* Two keys, minting with the second. Without the first key's secret no
 * input is a valid token under it, so any token that decodes must be the
 * signer's own spelling. */
static page_keyset *keyset(void) {
  static page_keyset *ks;
  static const page_keyset_entry keys[] = {
      {"fuzz-1", 6, FUZZ_SECRET, sizeof(FUZZ_SECRET) - 1},
      {"fuzz-2", 6, FUZZ_SECRET + 1, sizeof(FUZZ_SECRET) - 2},
  };
  if (!ks) ks = page_keyset_create(keys, 2, 1);
  if (!ks) abort();
  return ks;
}

static void as_token(const uint8_t *data, size_t size) {
  const char *filters[] = {"", FILTER};
  for (size_t i = 0; i < 2; i++) {
    page_cursor cur;
    char again[PAGE_TOKEN_MAX];
    if (page_keyset_decode(keyset(), (const char *)data, size, filters[i], strlen(filters[i]),
                           &cur) == 0 &&
        (page_keyset_encode(keyset(), &cur, filters[i], strlen(filters[i]), again,
                            sizeof(again)) != 0 ||
         strlen(again) != size || memcmp(again, data, size) != 0))
      abort(); /* a second spelling of a valid token */
    if (page_token_decode(key(), (const char *)data, size, filters[i], strlen(filters[i]),
                          &cur) != 0)
      continue;
    if (page_token_encode(key(), &cur, filters[i], strlen(filters[i]), again, sizeof(again)) !=
            0 ||
        strlen(again) != size || memcmp(again, data, size) != 0)
      abort(); /* a second spelling of a valid token */
  }
}

static void as_cursor(const uint8_t *data, size_t size) {
  if (size < 9) return;
  page_cursor cur;
  memset(&cur, 0, sizeof(cur));
  uint64_t us = 0;
  for (int i = 0; i < 8; i++) us = (us << 8) | data[i];
  cur.created_us = (int64_t)us;
  size_t id_len = data[8] % PAGE_CURSOR_ID_LEN + 1;
  data += 9;
  size -= 9;
  for (size_t i = 0; i < id_len; i++) cur.id[i] = i < size && data[i] ? (char)data[i] : 'a';
  size_t used = id_len < size ? id_len : size;
  const char *filter = (const char *)data + used;
  size_t filter_len = size - used;
  char token[PAGE_TOKEN_MAX];
  if (page_token_encode(key(), &cur, filter, filter_len, token, sizeof(token)) != 0) abort();
  if (strlen(token) >= PAGE_TOKEN_MAX) abort();
  page_cursor back;
  if (page_token_decode(key(), token, strlen(token), filter, filter_len, &back) != 0) abort();
  if (back.created_us != cur.created_us || strcmp(back.id, cur.id) != 0) abort();
  /* The same token must not pass for a different filter. */
  if (filter_len > 0 && page_token_decode(key(), token, strlen(token), filter, filter_len - 1,
                                          &back) == 0)
    abort();
  if (page_keyset_encode(keyset(), &cur, filter, filter_len, token, sizeof(token)) != 0 ||
      strlen(token) >= PAGE_TOKEN_MAX ||
      page_keyset_decode(keyset(), token, strlen(token), filter, filter_len, &back) != 0 ||
      back.created_us != cur.created_us || strcmp(back.id, cur.id) != 0)
    abort();
  /* Neither format passes for the other. */
  if (page_token_decode(key(), token, strlen(token), filter, filter_len, &back) == 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  as_token(data, size);
  as_cursor(data, size);
  return 0;
}
