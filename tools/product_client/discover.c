/* --discover ETCD_URL: pick a product-server that registered itself in etcd
 * under /services/product-service/<addr> (the contract's "Service
 * registration"): one Range over that prefix, then one of the live entries
 * at random, so that clients spread over the replicas. The value is the
 * address; an empty value falls back to the key's suffix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "config/config.h"
#include "product_client.h"
#include "registry/etcd.h"
#include "registry/registry.h"

/* The lookup is one small call; a dead etcd fails at once (no wait for ready). */
#define DISCOVER_TIMEOUT_MS 5000
/* More registered servers than this are not looked at. */
#define DISCOVER_LIMIT 1000

/* An address we are willing to dial: HOST:PORT with a port, no spaces or
 * control bytes (the value came from etcd, which anyone with access writes). */
static bool usable_addr(const char *a) {
  if (!a[0] || strlen(a) >= 300)
    return false;
  for (const char *p = a; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/' || *p == ',')
      return false;
  config_addr parsed;
  char why[160];
  return strrchr(a, ':') && config_parse_addr(a, &parsed, why, sizeof why) == 0 &&
         parsed.port > 0;
}

static const char *entry_addr(const etcd_kv *kv) {
  if (kv->value[0])
    return kv->value;
  return kv->key + strlen(REGISTRY_KEY_PREFIX);
}

/* Picks among the endpoints of one URL list, in turn, until one answers. */
static int lookup(char **endpoints, size_t n_endpoints, etcd_kv **kvs, size_t *n, char *err,
                  size_t errlen) {
  int code = RPC_UNAVAILABLE;
  for (size_t i = 0; i < n_endpoints; i++) {
    etcd_client_options o = {.endpoint = endpoints[i], .wait_for_ready = false};
    etcd_client *e = NULL;
    if (etcd_client_create(&o, &e, err, errlen) != 0)
      return RPC_INVALID_ARGUMENT;
    char why[400];
    code = etcd_range_prefix(e, REGISTRY_KEY_PREFIX, DISCOVER_LIMIT, DISCOVER_TIMEOUT_MS, kvs, n,
                             why, sizeof why);
    etcd_client_destroy(e);
    if (code == RPC_OK)
      return RPC_OK;
    snprintf(err, errlen, "etcd at %s: %s", endpoints[i], why);
  }
  return code;
}

int discover_pick(const char *etcd_url, char *addr, size_t addrlen, char *err, size_t errlen) {
  char **endpoints = NULL;
  size_t n_endpoints = 0;
  etcd_kv *kvs = NULL;
  size_t n = 0;
  char why[200];
  int code;

  if (addrlen > 0)
    addr[0] = '\0';
  if (config_parse_etcd_endpoints(etcd_url, &endpoints, &n_endpoints, why, sizeof why) != 0) {
    snprintf(err, errlen, "bad --discover URL: %s", why);
    return RPC_INVALID_ARGUMENT;
  }
  /* Core log lines would duplicate the one error line printed from the
   * status (main sets the same before its own calls). */
  rpc_client_set_core_log(getenv("PRODUCT_CLIENT_DEBUG") ? "product-client: " : NULL);

  code = lookup(endpoints, n_endpoints, &kvs, &n, err, errlen);
  if (code != RPC_OK)
    goto cleanup;

  size_t usable = 0;
  for (size_t i = 0; i < n; i++)
    if (usable_addr(entry_addr(&kvs[i])))
      usable++;
  if (usable == 0) {
    snprintf(err, errlen, "no product-server is registered in etcd at %s", etcd_url);
    code = RPC_UNAVAILABLE;
    goto cleanup;
  }
  uint32_t r = 0;
  if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
    r = 0; /* the first one will do */
  size_t want = r % usable;
  for (size_t i = 0; i < n; i++) {
    const char *a = entry_addr(&kvs[i]);
    if (!usable_addr(a))
      continue;
    if (want-- == 0) {
      if (strlen(a) >= addrlen) {
        snprintf(err, errlen, "registered address is too long");
        code = RPC_INTERNAL;
      } else {
        memcpy(addr, a, strlen(a) + 1);
      }
      break;
    }
  }

cleanup:
  etcd_kvs_free(kvs, n);
  for (size_t i = 0; i < n_endpoints; i++)
    free(endpoints[i]);
  free(endpoints);
  return code;
}
