/* etcd v3 over our gRPC client: each call packs an etcdserverpb request with
 * protobuf-c, makes one unary call (or drives the keep-alive stream) and
 * unpacks the reply. The endpoint's scheme picks plaintext or TLS.
 *
 * Unary calls are made as one-message streams (rpc_stream) rather than with
 * rpc_client_unary, because a stream can be cancelled from another thread:
 * the call in flight is published under the client's mutex, and
 * etcd_client_interrupt cancels it there. */
#include "registry/etcd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/call.h"
#include "etcd/rpc.pb-c.h"
#include "client/rpc_client.h"

#define ETCD_KV "/etcdserverpb.KV/"
#define ETCD_LEASE "/etcdserverpb.Lease/"

struct etcd_client {
  rpc_client *rpc;
  char *endpoint;
  pthread_mutex_t mu;
  rpc_stream *inflight; /* under mu: the call etcd_client_interrupt cancels */
  bool interrupted;     /* under mu */
};

struct etcd_keepalive {
  etcd_client *client;
  rpc_stream *stream;
};

/* Makes s the call in flight; false (nothing published) when interrupted. */
static bool publish(etcd_client *e, rpc_stream *s) {
  pthread_mutex_lock(&e->mu);
  bool ok = !e->interrupted;
  if (ok)
    e->inflight = s;
  pthread_mutex_unlock(&e->mu);
  return ok;
}

static void unpublish(etcd_client *e) {
  pthread_mutex_lock(&e->mu);
  e->inflight = NULL;
  pthread_mutex_unlock(&e->mu);
}

void etcd_client_interrupt(etcd_client *e) {
  if (!e)
    return;
  pthread_mutex_lock(&e->mu);
  e->interrupted = true;
  if (e->inflight)
    rpc_stream_cancel(e->inflight);
  pthread_mutex_unlock(&e->mu);
}

void etcd_client_resume(etcd_client *e) {
  if (!e)
    return;
  pthread_mutex_lock(&e->mu);
  e->interrupted = false;
  pthread_mutex_unlock(&e->mu);
}

int etcd_client_create(const etcd_client_options *opt, etcd_client **out, char *err,
                       size_t errlen) {
  *out = NULL;
  if (!opt || !opt->endpoint || !opt->endpoint[0]) {
    snprintf(err, errlen, "no etcd endpoint");
    return -1;
  }
  const char *target = opt->endpoint;
  bool tls = false;
  if (strncasecmp(target, "http://", 7) == 0) {
    target += 7;
  } else if (strncasecmp(target, "https://", 8) == 0) {
    target += 8;
    tls = true;
  }
  char host[320];
  size_t n = strcspn(target, "/");
  if (n == 0 || n >= sizeof host) {
    snprintf(err, errlen, "bad etcd endpoint '%.200s'", opt->endpoint);
    return -1;
  }
  memcpy(host, target, n);
  host[n] = '\0';

  etcd_client *e = calloc(1, sizeof *e);
  if (!e || !(e->endpoint = strdup(opt->endpoint))) {
    free(e);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  pthread_mutex_init(&e->mu, NULL);
  rpc_client_options ro = {
      .target = host,
      .insecure = !tls,
      .wait_for_ready = opt->wait_for_ready,
      .reconnect_backoff_max_ms = opt->reconnect_backoff_max_ms,
  };
  if (rpc_client_create(&ro, &e->rpc, err, errlen) != 0) {
    etcd_client_destroy(e);
    return -1;
  }
  *out = e;
  return 0;
}

void etcd_client_destroy(etcd_client *e) {
  if (!e)
    return;
  rpc_client_destroy(e->rpc);
  pthread_mutex_destroy(&e->mu);
  free(e->endpoint);
  free(e);
}

const char *etcd_client_endpoint(const etcd_client *e) { return e ? e->endpoint : ""; }

/* Sends msg on a one-message stream and receives the one reply. Returns
 * the call's status; *body (malloc'd) only with RPC_OK. *stale (NULL: not
 * asked) tells whether the call met the core's stale connect errno and the
 * client has a new channel to try once more on. */
static int unary_attempt(etcd_client *e, const char *method, const uint8_t *msg, size_t len,
                         int64_t timeout_ms, bool *stale, uint8_t **body, size_t *body_len,
                         char *err, size_t errlen) {
  *body = NULL;
  *body_len = 0;
  rpc_stream *s = NULL;
  char why[256];
  if (rpc_stream_open(e->rpc, method, NULL, 0, timeout_ms, &s, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", method, why);
    return RPC_INTERNAL;
  }
  if (!publish(e, s)) {
    rpc_stream_close(s, NULL);
    snprintf(err, errlen, "%s: CANCELLED: interrupted", method);
    return RPC_CANCELLED;
  }
  /* Each wait below is bounded by the call's deadline (or a cancel). */
  uint8_t *extra = NULL;
  size_t extra_len = 0;
  bool sent = rpc_stream_send(s, msg, len, 0) == 0 && rpc_stream_close_send(s, 0) == 0;
  /* Received even when the send failed: it ends with the call, so that the
   * status below is the call's own. */
  bool got = rpc_stream_recv(s, 0, body, body_len) == RPC_STREAM_MESSAGE && sent;
  /* Read on to the end, so the status is the server's and not our cancel. */
  bool one = got && rpc_stream_recv(s, 0, &extra, &extra_len) == RPC_STREAM_ENDED;
  free(extra);
  unpublish(e);
  rpc_result r;
  rpc_stream_close(s, &r);
  int code = r.code;
  if (stale)
    *stale = rpc_client_retry_stale_connect(e->rpc, &r);
  if (code != RPC_OK)
    snprintf(err, errlen, "%s: %s: %s", method, rpc_code_name(r.code),
             r.message ? r.message : "");
  else if (!got || !one) {
    snprintf(err, errlen, "%s: not exactly one reply message", method);
    code = RPC_INTERNAL;
  }
  rpc_result_free(&r);
  if (code != RPC_OK) {
    free(*body);
    *body = NULL;
    *body_len = 0;
  }
  return code;
}

/* unary_attempt, tried once more within the same deadline after the gRPC
 * core's stale connect errno (src/client/rpc_client_stale_errno.c; remove the
 * second attempt with it once the core is 1.60 or newer). */
static int unary(etcd_client *e, const char *method, const uint8_t *msg, size_t len,
                 int64_t timeout_ms, uint8_t **body, size_t *body_len, char *err,
                 size_t errlen) {
  int64_t start_ns = clock_mono_ns();
  bool stale = false;
  int code = unary_attempt(e, method, msg, len, timeout_ms, &stale, body, body_len, err, errlen);
  if (!stale)
    return code;
  int64_t left = timeout_ms > 0 ? timeout_ms - (clock_mono_ns() - start_ns) / 1000000 : timeout_ms;
  if (timeout_ms > 0 && left <= 0)
    return code;
  return unary_attempt(e, method, msg, len, left, NULL, body, body_len, err, errlen);
}

/* One call: req packed, the reply unpacked into *resp (the caller frees it
 * with protobuf_c_message_free_unpacked). */
static int call(etcd_client *e, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                ProtobufCMessage **resp, char *err, size_t errlen) {
  *resp = NULL;
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    snprintf(err, errlen, "out of memory");
    return RPC_RESOURCE_EXHAUSTED;
  }
  protobuf_c_message_pack(req, buf);
  uint8_t *body;
  size_t body_len;
  int code = unary(e, method, buf, len, timeout_ms, &body, &body_len, err, errlen);
  free(buf);
  if (code != RPC_OK)
    return code;
  *resp = protobuf_c_message_unpack(resp_desc, NULL, body_len, body);
  free(body);
  if (!*resp) {
    snprintf(err, errlen, "%s: the reply is not a %s", method, resp_desc->name);
    return RPC_INTERNAL;
  }
  return RPC_OK;
}

int etcd_lease_grant(etcd_client *e, int64_t ttl_s, int64_t timeout_ms, int64_t *id,
                     int64_t *granted_ttl_s, char *err, size_t errlen) {
  Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
  req.ttl = ttl_s;
  ProtobufCMessage *m;
  int code = call(e, ETCD_LEASE "LeaseGrant", &req.base,
                  &etcdserverpb__lease_grant_response__descriptor, timeout_ms, &m, err, errlen);
  if (code != RPC_OK)
    return code;
  Etcdserverpb__LeaseGrantResponse *resp = (Etcdserverpb__LeaseGrantResponse *)m;
  if (resp->error && resp->error[0]) {
    snprintf(err, errlen, "LeaseGrant: %.200s", resp->error);
    code = RPC_UNAVAILABLE;
  } else if (resp->id == 0) {
    snprintf(err, errlen, "LeaseGrant: no lease ID in the reply");
    code = RPC_INTERNAL;
  } else {
    *id = resp->id;
    *granted_ttl_s = resp->ttl;
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return code;
}

int etcd_put(etcd_client *e, const char *key, const char *value, int64_t lease,
             int64_t timeout_ms, char *err, size_t errlen) {
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = (ProtobufCBinaryData){.len = strlen(key), .data = (uint8_t *)key};
  req.value = (ProtobufCBinaryData){.len = strlen(value), .data = (uint8_t *)value};
  req.lease = lease;
  ProtobufCMessage *m;
  int code = call(e, ETCD_KV "Put", &req.base, &etcdserverpb__put_response__descriptor,
                  timeout_ms, &m, err, errlen);
  if (code == RPC_OK)
    protobuf_c_message_free_unpacked(m, NULL);
  return code;
}

int etcd_lease_revoke(etcd_client *e, int64_t id, int64_t timeout_ms, char *err, size_t errlen) {
  Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
  req.id = id;
  ProtobufCMessage *m;
  int code = call(e, ETCD_LEASE "LeaseRevoke", &req.base,
                  &etcdserverpb__lease_revoke_response__descriptor, timeout_ms, &m, err, errlen);
  if (code == RPC_OK)
    protobuf_c_message_free_unpacked(m, NULL);
  return code;
}

static char *dup_data(ProtobufCBinaryData d) {
  size_t n = d.data ? strnlen((const char *)d.data, d.len) : 0;
  char *s = malloc(n + 1);
  if (s) {
    if (n)
      memcpy(s, d.data, n);
    s[n] = '\0';
  }
  return s;
}

void etcd_kvs_free(etcd_kv *kvs, size_t n) {
  if (!kvs)
    return;
  for (size_t i = 0; i < n; i++) {
    free(kvs[i].key);
    free(kvs[i].value);
  }
  free(kvs);
}

int etcd_range_prefix(etcd_client *e, const char *prefix, int64_t limit, int64_t timeout_ms,
                      etcd_kv **kvs, size_t *n, char *err, size_t errlen) {
  *kvs = NULL;
  *n = 0;
  size_t plen = strlen(prefix);
  /* range_end = the prefix with its last byte plus one: every key that
   * starts with the prefix (etcd's clientv3.GetPrefixRangeEnd). */
  uint8_t end[512];
  if (plen == 0 || plen > sizeof end || (uint8_t)prefix[plen - 1] == 0xff) {
    snprintf(err, errlen, "unsupported key prefix");
    return RPC_INVALID_ARGUMENT;
  }
  memcpy(end, prefix, plen);
  end[plen - 1]++;
  Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
  req.key = (ProtobufCBinaryData){.len = plen, .data = (uint8_t *)prefix};
  req.range_end = (ProtobufCBinaryData){.len = plen, .data = end};
  req.limit = limit;
  ProtobufCMessage *m;
  int code = call(e, ETCD_KV "Range", &req.base, &etcdserverpb__range_response__descriptor,
                  timeout_ms, &m, err, errlen);
  if (code != RPC_OK)
    return code;
  Etcdserverpb__RangeResponse *resp = (Etcdserverpb__RangeResponse *)m;
  etcd_kv *out = resp->n_kvs ? calloc(resp->n_kvs, sizeof *out) : NULL;
  size_t got = 0;
  if (resp->n_kvs && !out)
    goto oom;
  for (; got < resp->n_kvs; got++) {
    const Etcdserverpb__KeyValue *kv = resp->kvs[got];
    out[got].key = dup_data(kv->key);
    out[got].value = dup_data(kv->value);
    out[got].lease = kv->lease;
    if (!out[got].key || !out[got].value) {
      got++;
      goto oom;
    }
  }
  protobuf_c_message_free_unpacked(m, NULL);
  *kvs = out;
  *n = got;
  return RPC_OK;
oom:
  etcd_kvs_free(out, got);
  protobuf_c_message_free_unpacked(m, NULL);
  snprintf(err, errlen, "out of memory");
  return RPC_RESOURCE_EXHAUSTED;
}

/* ---------------------------------------------------------- keep-alive ---- */

int etcd_keepalive_open(etcd_client *e, etcd_keepalive **out, char *err, size_t errlen) {
  *out = NULL;
  etcd_keepalive *k = calloc(1, sizeof *k);
  if (!k) {
    snprintf(err, errlen, "out of memory");
    return RPC_RESOURCE_EXHAUSTED;
  }
  k->client = e;
  /* No deadline: the stream lives as long as the registration. */
  if (rpc_stream_open(e->rpc, ETCD_LEASE "LeaseKeepAlive", NULL, 0, 0, &k->stream, err,
                      errlen) != 0) {
    free(k);
    return RPC_INTERNAL;
  }
  if (!publish(e, k->stream)) {
    rpc_stream_close(k->stream, NULL);
    free(k);
    snprintf(err, errlen, "LeaseKeepAlive: CANCELLED: interrupted");
    return RPC_CANCELLED;
  }
  *out = k;
  return RPC_OK;
}

int etcd_keepalive_send(etcd_keepalive *k, int64_t id, int64_t wait_ms) {
  Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
  req.id = id;
  uint8_t buf[16]; /* one int64 field: at most 11 bytes */
  size_t len = etcdserverpb__lease_keep_alive_request__pack(&req, buf);
  return rpc_stream_send(k->stream, buf, len, wait_ms);
}

etcd_keepalive_event etcd_keepalive_recv(etcd_keepalive *k, int64_t wait_ms, int64_t *ttl_s) {
  uint8_t *body;
  size_t len;
  for (;;) {
    rpc_stream_event ev = rpc_stream_recv(k->stream, wait_ms, &body, &len);
    if (ev == RPC_STREAM_TIMEOUT)
      return ETCD_KEEPALIVE_TIMEOUT;
    if (ev == RPC_STREAM_ENDED)
      return ETCD_KEEPALIVE_ENDED;
    Etcdserverpb__LeaseKeepAliveResponse *resp =
        etcdserverpb__lease_keep_alive_response__unpack(NULL, len, body);
    free(body);
    if (!resp) { /* not etcd's reply: this stream is no good */
      rpc_stream_cancel(k->stream);
      continue; /* the next receive reports the end */
    }
    *ttl_s = resp->ttl;
    etcdserverpb__lease_keep_alive_response__free_unpacked(resp, NULL);
    return ETCD_KEEPALIVE_RESPONSE;
  }
}

void etcd_keepalive_cancel(etcd_keepalive *k) {
  if (k)
    rpc_stream_cancel(k->stream);
}

void etcd_keepalive_close(etcd_keepalive *k, char *err, size_t errlen) {
  if (!k)
    return;
  unpublish(k->client);
  rpc_result r;
  rpc_stream_close(k->stream, &r);
  if (err && errlen)
    snprintf(err, errlen, "%s: %s", rpc_code_name(r.code), r.message ? r.message : "");
  rpc_result_free(&r);
  free(k);
}
