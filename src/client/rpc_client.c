/* Blocking unary calls on the gRPC C core (libgrpc 1.51). One channel and one
 * pluck completion queue per client; each call is a single batch that sends
 * everything and receives everything, and the caller's thread waits on the
 * queue until the status arrives (the deadline bounds the wait). */
#include "client/rpc_client.h"
#include "client/rpc_client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <openssl/x509.h>

#include "core/pem.h"

struct rpc_client {
  grpc_channel *channel;
  grpc_completion_queue *cq;
  bool wait_for_ready;
  /* What a new channel is made of (rpc_client_renew_channel). */
  char *target;
  grpc_channel_credentials *creds; /* our reference */
  char *server_name_override;      /* NULL: none */
  int reconnect_backoff_max_ms;
};

/* ------------------------------------------------------------ core log ---- */

static char core_log_prefix[64];
static bool core_log_print; /* false: drop every core line */

static void core_log_sink(gpr_log_func_args *args) {
  if (!core_log_print || args->severity != GPR_LOG_SEVERITY_ERROR)
    return;
  /* One fprintf: stdio locks the stream, so lines from core threads do not mix. */
  fprintf(stderr, "%sgrpc: %s\n", core_log_prefix, args->message ? args->message : "");
}

void rpc_client_set_core_log(const char *prefix) {
  core_log_print = prefix != NULL;
  snprintf(core_log_prefix, sizeof core_log_prefix, "%s", prefix ? prefix : "");
  gpr_set_log_function(core_log_sink);
}

/* For rpc_stream.c, which posts its batches on the same channel and queue. */
grpc_channel *rpc_client_channel(rpc_client *c) { return c->channel; }
grpc_completion_queue *rpc_client_queue(rpc_client *c) { return c->cq; }
bool rpc_client_waits_for_ready(const rpc_client *c) { return c->wait_for_ready; }

/* ------------------------------------------------------------- create ---- */

/* grpc only notices a bad PEM at the first handshake, as an opaque
 * UNAVAILABLE; check here (core/pem.h, as the server checks its own) so
 * that a wrong file is named at once. */
static int check_pem(const rpc_client_options *opt, const char *ca, const char *cert,
                     const char *key, char *err, size_t errlen) {
  X509 *leaf = NULL;
  int rc = -1;
  if (ca && pem_check_chain(ca, "CA file", opt->ca_file, NULL, err, errlen) != 0) goto cleanup;
  if (cert && (pem_check_chain(cert, "certificate file", opt->cert_file, &leaf, err, errlen) != 0 ||
               pem_check_key(key, "key file", opt->key_file, leaf, opt->cert_file, err,
                             errlen) != 0))
    goto cleanup;
  rc = 0;
cleanup:
  X509_free(leaf);
  return rc;
}

/* A channel to c's target with c's credentials and options. own_subchannels:
 * with subchannels of its own rather than those of the process-wide pool,
 * so that it connects afresh even while another channel to the same address
 * waits out a reconnect backoff. NULL only when out of memory (a bad target
 * gives a lame channel whose calls fail with a status). */
static grpc_channel *open_channel(const rpc_client *c, bool own_subchannels) {
  grpc_arg arg[4];
  grpc_channel_args args = {.num_args = 0, .args = arg};
  if (c->server_name_override)
    arg[args.num_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                      .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                      .value.string = c->server_name_override};
  if (c->reconnect_backoff_max_ms > 0) {
    int max = c->reconnect_backoff_max_ms;
    arg[args.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                      .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                                      .value.integer = max};
    /* The default first step (1 s) would exceed a smaller cap. */
    arg[args.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                      .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                                      .value.integer = max < 1000 ? max : 1000};
  }
  if (own_subchannels)
    arg[args.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                      .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                                      .value.integer = 1};
  /* The channel copies target and args and takes its own ref to creds. */
  return grpc_channel_create(c->target, c->creds, args.num_args ? &args : NULL);
}

static void free_client(rpc_client *c) {
  if (c->channel)
    grpc_channel_destroy(c->channel);
  if (c->creds)
    grpc_channel_credentials_release(c->creds);
  free(c->target);
  free(c->server_name_override);
  free(c);
}

int rpc_client_create(const rpc_client_options *opt, rpc_client **out, char *err, size_t errlen) {
  char *ca = NULL, *cert = NULL, *key = NULL;
  rpc_client *c = NULL;
  bool grpc_up = false;
  int rc = -1;

  *out = NULL;
  if (!opt || !opt->target || !opt->target[0]) {
    snprintf(err, errlen, "no target address");
    return -1;
  }
  if (!opt->insecure) {
    if ((opt->cert_file == NULL) != (opt->key_file == NULL)) {
      snprintf(err, errlen, "a client certificate needs both a certificate and a key file");
      return -1;
    }
    if (opt->ca_file && pem_read_file(opt->ca_file, "CA file", &ca, err, errlen) != 0)
      goto cleanup;
    if (opt->cert_file &&
        (pem_read_file(opt->cert_file, "certificate file", &cert, err, errlen) != 0 ||
         pem_read_file(opt->key_file, "key file", &key, err, errlen) != 0))
      goto cleanup;
    if (check_pem(opt, ca, cert, key, err, errlen) != 0)
      goto cleanup;
  }

  c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    goto cleanup;
  }
  c->wait_for_ready = opt->wait_for_ready;

  /* c-ares leaks per resolution in this version; the native resolver does
   * not. Only before the core starts: setenv races with core threads' getenv. */
  if (!grpc_is_initialized())
    setenv("GRPC_DNS_RESOLVER", "native", 0);
  grpc_init();
  grpc_up = true;

  const char *sni = !opt->insecure && opt->server_name_override && opt->server_name_override[0]
                        ? opt->server_name_override
                        : NULL;
  c->target = strdup(opt->target);
  c->server_name_override = sni ? strdup(sni) : NULL;
  c->reconnect_backoff_max_ms = opt->reconnect_backoff_max_ms;
  if (!c->target || (sni && !c->server_name_override)) {
    snprintf(err, errlen, "out of memory");
    goto cleanup;
  }
  if (opt->insecure) {
    c->creds = grpc_insecure_credentials_create();
  } else {
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    /* NULL roots: $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, else grpc's bundle. */
    c->creds = grpc_ssl_credentials_create_ex(ca, cert ? &pair : NULL, NULL, NULL);
  }
  if (!c->creds) {
    snprintf(err, errlen, "cannot create channel credentials");
    goto cleanup;
  }
  c->channel = open_channel(c, false);
  if (!c->channel) {
    snprintf(err, errlen, "cannot create a channel to %s", opt->target);
    goto cleanup;
  }
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  if (!c->cq) {
    snprintf(err, errlen, "cannot create a completion queue");
    goto cleanup;
  }
  *out = c;
  c = NULL;
  rc = 0;

cleanup:
  /* The credentials hold their own copies of the PEM data. */
  pem_free(ca);
  pem_free(cert);
  pem_free(key);
  if (c)
    free_client(c);
  if (rc != 0 && grpc_up)
    grpc_shutdown();
  return rc;
}

void rpc_client_destroy(rpc_client *c) {
  if (!c)
    return;
  /* Every call has come back (rpc_client_unary waits for its tag), so the
   * queue holds nothing but the shutdown event. */
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(c->cq);
  free_client(c);
  grpc_shutdown();
}

int rpc_client_renew_channel(rpc_client *c) {
  grpc_channel *fresh = open_channel(c, true);
  if (!fresh)
    return -1;
  /* Streams still open on the old channel hold their own reference to it. */
  grpc_channel_destroy(c->channel);
  c->channel = fresh;
  return 0;
}

/* --------------------------------------------------------------- call ---- */

static char *dup_bytes(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    if (n)
      memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

/* Sets out's code and a copy of msg; a NULL message means out of memory,
 * which the caller reports as its non-zero return. */
static int set_result(rpc_result *out, rpc_code code, const char *msg, size_t len) {
  free(out->message);
  out->code = code;
  out->message = dup_bytes(msg, len);
  return out->message ? 0 : -1;
}

static int fail_start(rpc_result *out, const char *msg) {
  set_result(out, RPC_INTERNAL, msg, strlen(msg));
  return -1;
}

/* Copies a received message into one malloc'd buffer (the reader joins the
 * slices and undoes compression). Shared with rpc_stream.c. */
int rpc_client_read_message(grpc_byte_buffer *bb, uint8_t **body, size_t *len) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return -1;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  *len = GRPC_SLICE_LENGTH(s);
  *body = (uint8_t *)dup_bytes(GRPC_SLICE_START_PTR(s), *len);
  grpc_slice_unref(s);
  return *body ? 0 : -1;
}

void rpc_client_free_md(grpc_metadata *m, size_t n) {
  if (!m) return;
  for (size_t i = 0; i < n; i++) {
    grpc_slice_unref(m[i].key);
    grpc_slice_unref(m[i].value);
  }
  free(m);
}

int rpc_client_build_md(const rpc_metadata *md, size_t n, grpc_metadata **out, char *err,
                        size_t errlen) {
  *out = NULL;
  if (n == 0) return 0;
  grpc_metadata *m = calloc(n, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (!md[i].key || !md[i].value) {
      snprintf(err, errlen, "metadata without a key or value");
      rpc_client_free_md(m, i);
      return -1;
    }
    m[i].key = grpc_slice_from_copied_string(md[i].key);
    m[i].value = grpc_slice_from_copied_string(md[i].value);
    if (!grpc_header_key_is_legal(m[i].key) ||
        (!grpc_is_binary_header(m[i].key) && !grpc_header_nonbin_value_is_legal(m[i].value))) {
      snprintf(err, errlen, "metadata '%.64s' has a character gRPC cannot send", md[i].key);
      rpc_client_free_md(m, i + 1);
      return -1;
    }
  }
  *out = m;
  return 0;
}

/* One attempt of rpc_client_unary, until the absolute deadline. */
static int unary_attempt(rpc_client *c, const char *method, const uint8_t *req, size_t req_len,
                         const rpc_metadata *md, size_t n_md, gpr_timespec deadline,
                         rpc_result *out) {
  *out = (rpc_result){.code = RPC_UNKNOWN};
  if (!c || !method || (!req && req_len) || (!md && n_md))
    return fail_start(out, "bad arguments to rpc_client_unary");
  char md_err[160];
  grpc_metadata *send_md;
  if (rpc_client_build_md(md, n_md, &send_md, md_err, sizeof md_err) != 0)
    return fail_start(out, md_err);
  grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
  grpc_metadata_array recv_initial, recv_trailing;
  grpc_metadata_array_init(&recv_initial);
  grpc_metadata_array_init(&recv_trailing);
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  const char *error_string = NULL;
  grpc_call *call = NULL;
  int rc = -1;

  grpc_slice payload = grpc_slice_from_copied_buffer((const char *)req, req_len);
  send_bb = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);

  grpc_slice path = grpc_slice_from_copied_string(method);
  call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, path, NULL,
                                  deadline, NULL);
  grpc_slice_unref(path); /* only needed during create_call */
  if (!call) {
    fail_start(out, "cannot create the call");
    goto cleanup;
  }

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = c->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                                         GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET
                                   : 0;
  ops[0].data.send_initial_metadata.count = n_md;
  ops[0].data.send_initial_metadata.metadata = send_md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &recv_initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &recv_trailing;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  ops[5].data.recv_status_on_client.error_string = &error_string;

  /* The tag only has to be unique on this queue while the call runs. */
  void *tag = call;
  grpc_call_error ce = grpc_call_start_batch(call, ops, 6, tag, NULL);
  if (ce != GRPC_CALL_OK) { /* nothing started, no event will come */
    char msg[96];
    snprintf(msg, sizeof msg, "cannot start the call: %s", grpc_call_error_to_string(ce));
    fail_start(out, msg);
    goto cleanup;
  }
  grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (ev.type != GRPC_OP_COMPLETE) { /* cannot happen with an infinite wait */
    fail_start(out, "the completion queue failed");
    goto cleanup;
  }

  rpc_code code = (status >= GRPC_STATUS_OK && status <= GRPC_STATUS_UNAUTHENTICATED)
                      ? (rpc_code)status
                      : RPC_UNKNOWN;
  if (code == RPC_OK && !recv_bb) {
    /* A unary reply without a message breaks the protocol (grpc-go says INTERNAL too). */
    rc = set_result(out, RPC_INTERNAL, "server sent no response message",
                    strlen("server sent no response message"));
    goto cleanup;
  }
  if (set_result(out, code, (const char *)GRPC_SLICE_START_PTR(details),
                 GRPC_SLICE_LENGTH(details)) != 0)
    goto cleanup;
  if (code == RPC_OK && rpc_client_read_message(recv_bb, &out->body, &out->body_len) != 0) {
    rc = set_result(out, RPC_INTERNAL, "cannot read the response message",
                    strlen("cannot read the response message"));
    goto cleanup;
  }
  rc = 0;

cleanup:
  rpc_client_free_md(send_md, n_md);
  if (send_bb)
    grpc_byte_buffer_destroy(send_bb);
  if (recv_bb)
    grpc_byte_buffer_destroy(recv_bb);
  grpc_metadata_array_destroy(&recv_initial);
  grpc_metadata_array_destroy(&recv_trailing);
  grpc_slice_unref(details);
  gpr_free((void *)error_string);
  if (call)
    grpc_call_unref(call);
  if (rc != 0 && !out->message)
    out->code = RPC_INTERNAL; /* out of memory: no text to give */
  return rc;
}

int rpc_client_unary(rpc_client *c, const char *method, const uint8_t *req, size_t req_len,
                     const rpc_metadata *md, size_t n_md, int64_t timeout_ms, rpc_result *out) {
  if (!out)
    return -1;
  gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  if (timeout_ms > 0)
    deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                            gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  int rc = unary_attempt(c, method, req, req_len, md, n_md, deadline, out);
  /* libgrpc < 1.60 can fail a connect that was fine (rpc_client_stale_errno.c):
   * once, on a new channel, within the same deadline. */
  if (rc == 0 && gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) < 0 &&
      rpc_client_retry_stale_connect(c, out)) {
    rpc_result_free(out);
    rc = unary_attempt(c, method, req, req_len, md, n_md, deadline, out);
  }
  return rc;
}

void rpc_result_free(rpc_result *r) {
  if (!r)
    return;
  free(r->message);
  free(r->body);
  *r = (rpc_result){.code = RPC_UNKNOWN};
}
