#ifndef PRODUCT_REGISTRY_ETCD_H
#define PRODUCT_REGISTRY_ETCD_H
/* The few etcd v3 calls that service registration and discovery need
 * (etcdserverpb.KV/Range and Put, Lease/LeaseGrant, LeaseRevoke and the
 * LeaseKeepAlive stream), over our own gRPC client (src/client/rpc_client.h).
 * proto/etcd/rpc.proto is the trimmed copy of etcd's messages. Each call
 * returns 0 (RPC_OK) or the failing rpc_code with one line in err. One
 * etcd_client belongs to one thread at a time, except
 * etcd_client_interrupt and etcd_keepalive_cancel. Calls run as streams of
 * our transport, so that another thread can cancel them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etcd_client etcd_client;

typedef struct etcd_client_options {
  /* "http://HOST:PORT" (plaintext) or "https://HOST:PORT" (TLS, verified
   * against gRPC's default roots), as config_parse_etcd_endpoints makes
   * them; "HOST:PORT" alone means http. */
  const char *endpoint;
  /* Calls wait for a connection until their deadline (a registration that
   * retries), instead of failing at once when etcd is down (a CLI). */
  bool wait_for_ready;
  int reconnect_backoff_max_ms; /* 0 = gRPC's default */
} etcd_client_options;

int etcd_client_create(const etcd_client_options *opt, etcd_client **out, char *err,
                       size_t errlen);
void etcd_client_destroy(etcd_client *e);

/* Thread-safe: cancels the call or keep-alive stream in flight (it returns
 * RPC_CANCELLED / ETCD_KEEPALIVE_ENDED at once) and makes every later call
 * fail the same way at once, until etcd_client_resume. How a stop reaches a
 * thread that waits on etcd. */
void etcd_client_interrupt(etcd_client *e);
/* Lets calls through again (the owner thread, e.g. for a last revoke). */
void etcd_client_resume(etcd_client *e);
/* The endpoint as given, for log lines. */
const char *etcd_client_endpoint(const etcd_client *e);

/* A new lease of ttl_s seconds: *id and the TTL etcd granted. */
int etcd_lease_grant(etcd_client *e, int64_t ttl_s, int64_t timeout_ms, int64_t *id,
                     int64_t *granted_ttl_s, char *err, size_t errlen);
/* Puts key = value attached to lease (0: no lease). */
int etcd_put(etcd_client *e, const char *key, const char *value, int64_t lease,
             int64_t timeout_ms, char *err, size_t errlen);
/* Revokes the lease; etcd deletes every key attached to it. */
int etcd_lease_revoke(etcd_client *e, int64_t id, int64_t timeout_ms, char *err, size_t errlen);

typedef struct etcd_kv {
  char *key;   /* NUL-terminated copies (a key or value holding NUL is cut there) */
  char *value;
  int64_t lease;
} etcd_kv;

/* Every key that starts with prefix (at most limit; 0 = no limit), in key
 * order. *kvs is malloc'd (etcd_kvs_free), NULL when *n is 0. */
int etcd_range_prefix(etcd_client *e, const char *prefix, int64_t limit, int64_t timeout_ms,
                      etcd_kv **kvs, size_t *n, char *err, size_t errlen);
void etcd_kvs_free(etcd_kv *kvs, size_t n);

/* The LeaseKeepAlive stream: one request per refresh, one response each. */
typedef struct etcd_keepalive etcd_keepalive;

typedef enum etcd_keepalive_event {
  ETCD_KEEPALIVE_RESPONSE = 0, /* *ttl_s: the lease's new TTL; <= 0: the lease is gone */
  ETCD_KEEPALIVE_TIMEOUT,      /* nothing within wait_ms */
  ETCD_KEEPALIVE_ENDED,        /* the stream ended or was cancelled */
} etcd_keepalive_event;

int etcd_keepalive_open(etcd_client *e, etcd_keepalive **out, char *err, size_t errlen);
/* Asks etcd to refresh lease id; non-zero when the stream is no good. */
int etcd_keepalive_send(etcd_keepalive *k, int64_t id, int64_t wait_ms);
etcd_keepalive_event etcd_keepalive_recv(etcd_keepalive *k, int64_t wait_ms, int64_t *ttl_s);
/* Thread-safe: a receive in progress returns ETCD_KEEPALIVE_ENDED at once. */
void etcd_keepalive_cancel(etcd_keepalive *k);
/* Ends and frees the stream; err (may be NULL) gets its final status. */
void etcd_keepalive_close(etcd_keepalive *k, char *err, size_t errlen);

#endif
