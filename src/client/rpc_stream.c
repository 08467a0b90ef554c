/* Streaming calls on an rpc_client's channel (libgrpc 1.51), as the core
 * wants them: the status is requested at open and collected at close; at
 * most one send batch and one receive batch are outstanding at a time; each
 * kind of batch has its own tag (the address of a field of the stream), so
 * the one thread that drives the stream can pluck exactly what it waits
 * for, with a deadline, and come back later for a receive that timed out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "client/rpc_client.h"
#include "client/rpc_client_internal.h"

/* How long close waits for the status of a stream the server already ended
 * before it cancels instead. */
#define RPC_STREAM_STATUS_GRACE_MS 1000

struct rpc_stream {
  grpc_completion_queue *cq; /* the client's */
  grpc_call *call;
  grpc_metadata *send_md; /* kept until the start batch completes */
  size_t n_md;
  grpc_metadata_array recv_initial;
  grpc_metadata_array recv_trailing;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
  grpc_byte_buffer *send_bb; /* the message of the outstanding send */
  grpc_byte_buffer *recv_bb;
  /* Tags: only their addresses matter. */
  char tag_start, tag_status, tag_send, tag_recv;
  bool start_posted, status_posted, send_posted, recv_posted;
  bool asked_initial; /* RECV_INITIAL_METADATA went with the first receive */
  bool ended;         /* no more messages will come */
  bool send_broken;   /* a send failed or timed out */
};

static gpr_timespec until(int64_t wait_ms) {
  if (wait_ms <= 0)
    return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(wait_ms, GPR_TIMESPAN));
}

/* Waits for the batch behind tag; false when wait_ms passed first (the
 * batch stays outstanding). *ok: the batch's success flag. */
static bool wait_tag(rpc_stream *s, void *tag, int64_t wait_ms, bool *ok) {
  grpc_event ev = grpc_completion_queue_pluck(s->cq, tag, until(wait_ms), NULL);
  if (ev.type != GRPC_OP_COMPLETE)
    return false;
  *ok = ev.success != 0;
  return true;
}

static void free_send_md(rpc_stream *s) {
  rpc_client_free_md(s->send_md, s->n_md);
  s->send_md = NULL;
  s->n_md = 0;
}

static void stream_free(rpc_stream *s) {
  free_send_md(s);
  if (s->send_bb)
    grpc_byte_buffer_destroy(s->send_bb);
  if (s->recv_bb)
    grpc_byte_buffer_destroy(s->recv_bb);
  grpc_metadata_array_destroy(&s->recv_initial);
  grpc_metadata_array_destroy(&s->recv_trailing);
  grpc_slice_unref(s->details);
  gpr_free((void *)s->error_string);
  if (s->call)
    grpc_call_unref(s->call);
  free(s);
}

/* Copies md into grpc metadata (kept until the start batch completes). */
static int copy_md(rpc_stream *s, const rpc_metadata *md, size_t n_md, char *err, size_t errlen) {
  if (rpc_client_build_md(md, n_md, &s->send_md, err, errlen) != 0) return -1;
  s->n_md = n_md;
  return 0;
}

int rpc_stream_open(rpc_client *c, const char *method, const rpc_metadata *md, size_t n_md,
                    int64_t timeout_ms, rpc_stream **out, char *err, size_t errlen) {
  *out = NULL;
  if (!c || !method || (!md && n_md)) {
    snprintf(err, errlen, "bad arguments to rpc_stream_open");
    return -1;
  }
  rpc_stream *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->cq = rpc_client_queue(c);
  s->details = grpc_empty_slice();
  s->status = GRPC_STATUS_UNKNOWN;
  grpc_metadata_array_init(&s->recv_initial);
  grpc_metadata_array_init(&s->recv_trailing);
  if (copy_md(s, md, n_md, err, errlen) != 0)
    goto fail;

  grpc_slice path = grpc_slice_from_copied_string(method);
  s->call = grpc_channel_create_call(rpc_client_channel(c), NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                     path, NULL, until(timeout_ms), NULL);
  grpc_slice_unref(path);
  if (!s->call) {
    snprintf(err, errlen, "cannot create the call");
    goto fail;
  }

  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  op.flags = rpc_client_waits_for_ready(c) ? GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                                                 GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET
                                           : 0;
  op.data.send_initial_metadata.count = s->n_md;
  op.data.send_initial_metadata.metadata = s->send_md;
  grpc_call_error ce = grpc_call_start_batch(s->call, &op, 1, &s->tag_start, NULL);
  if (ce != GRPC_CALL_OK) {
    snprintf(err, errlen, "cannot start the call: %s", grpc_call_error_to_string(ce));
    goto fail;
  }
  s->start_posted = true;

  /* The status is asked for at once and alone: it completes when the call
   * ends, however it ends, and close collects it. */
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &s->recv_trailing;
  op.data.recv_status_on_client.status = &s->status;
  op.data.recv_status_on_client.status_details = &s->details;
  op.data.recv_status_on_client.error_string = &s->error_string;
  ce = grpc_call_start_batch(s->call, &op, 1, &s->tag_status, NULL);
  if (ce != GRPC_CALL_OK) {
    snprintf(err, errlen, "cannot start the call: %s", grpc_call_error_to_string(ce));
    goto fail;
  }
  s->status_posted = true;
  *out = s;
  return 0;

fail:
  if (s->start_posted) {
    bool ok;
    grpc_call_cancel(s->call, NULL);
    wait_tag(s, &s->tag_start, 0, &ok);
  }
  stream_free(s);
  return -1;
}

/* Collects the outstanding send; false when it did not complete in time. */
static bool finish_send(rpc_stream *s, int64_t wait_ms) {
  bool ok = false;
  if (!wait_tag(s, &s->tag_send, wait_ms, &ok)) {
    s->send_broken = true;
    return false;
  }
  s->send_posted = false;
  if (s->send_bb) {
    grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
  }
  if (!ok)
    s->send_broken = true;
  return ok;
}

int rpc_stream_send(rpc_stream *s, const uint8_t *msg, size_t len, int64_t wait_ms) {
  if (!s || (!msg && len) || s->send_broken || s->send_posted)
    return -1;
  grpc_slice payload = grpc_slice_from_copied_buffer((const char *)msg, len);
  s->send_bb = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = s->send_bb;
  if (grpc_call_start_batch(s->call, &op, 1, &s->tag_send, NULL) != GRPC_CALL_OK) {
    grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
    s->send_broken = true;
    return -1;
  }
  s->send_posted = true;
  return finish_send(s, wait_ms) ? 0 : -1;
}

int rpc_stream_close_send(rpc_stream *s, int64_t wait_ms) {
  if (!s || s->send_broken || s->send_posted)
    return -1;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  if (grpc_call_start_batch(s->call, &op, 1, &s->tag_send, NULL) != GRPC_CALL_OK) {
    s->send_broken = true;
    return -1;
  }
  s->send_posted = true;
  bool ok = finish_send(s, wait_ms);
  s->send_broken = true; /* nothing may follow a half-close */
  return ok ? 0 : -1;
}

rpc_stream_event rpc_stream_recv(rpc_stream *s, int64_t wait_ms, uint8_t **body, size_t *len) {
  *body = NULL;
  *len = 0;
  if (!s || s->ended)
    return RPC_STREAM_ENDED;
  if (!s->recv_posted) {
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!s->asked_initial) {
      ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
      ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->recv_initial;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &s->recv_bb;
    if (grpc_call_start_batch(s->call, ops, n, &s->tag_recv, NULL) != GRPC_CALL_OK) {
      s->ended = true;
      return RPC_STREAM_ENDED;
    }
    s->asked_initial = true;
    s->recv_posted = true;
  }
  bool ok;
  if (!wait_tag(s, &s->tag_recv, wait_ms, &ok))
    return RPC_STREAM_TIMEOUT;
  s->recv_posted = false;
  /* No message: the server closed the stream or the call failed. */
  if (!ok || !s->recv_bb) {
    s->ended = true;
    return RPC_STREAM_ENDED;
  }
  int rc = rpc_client_read_message(s->recv_bb, body, len);
  grpc_byte_buffer_destroy(s->recv_bb);
  s->recv_bb = NULL;
  if (rc != 0) { /* out of memory: this stream cannot go on */
    s->ended = true;
    grpc_call_cancel(s->call, NULL);
    return RPC_STREAM_ENDED;
  }
  return RPC_STREAM_MESSAGE;
}

void rpc_stream_cancel(rpc_stream *s) {
  if (s)
    grpc_call_cancel(s->call, NULL);
}

void rpc_stream_close(rpc_stream *s, rpc_result *out) {
  if (out)
    *out = (rpc_result){.code = RPC_UNKNOWN};
  if (!s)
    return;
  bool ok;
  /* A stream the server ended has its status on the way; any other is
   * cancelled, after which every outstanding batch completes promptly. */
  if (!(s->ended && wait_tag(s, &s->tag_status, RPC_STREAM_STATUS_GRACE_MS, &ok))) {
    grpc_call_cancel(s->call, NULL);
    wait_tag(s, &s->tag_status, 0, &ok);
  }
  if (s->recv_posted)
    wait_tag(s, &s->tag_recv, 0, &ok);
  if (s->send_posted)
    wait_tag(s, &s->tag_send, 0, &ok);
  if (s->start_posted)
    wait_tag(s, &s->tag_start, 0, &ok);
  if (out) {
    out->code = (s->status >= GRPC_STATUS_OK && s->status <= GRPC_STATUS_UNAUTHENTICATED)
                    ? (rpc_code)s->status
                    : RPC_UNKNOWN;
    size_t n = GRPC_SLICE_LENGTH(s->details);
    out->message = malloc(n + 1);
    if (out->message) {
      if (n)
        memcpy(out->message, GRPC_SLICE_START_PTR(s->details), n);
      out->message[n] = '\0';
    }
  }
  stream_free(s);
}
