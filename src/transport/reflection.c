/* grpc.reflection.v1 and v1alpha ServerReflectionInfo: a bidirectional
 * stream that answers each request with one response (primer section 10).
 * The two versions' messages are identical on the wire (same fields, same
 * numbers; only the package differs), so one implementation with the v1
 * types serves both; `version` only names the method in logs and metrics.
 *
 * Per call: {RECV_CLOSE_ON_SERVER} alone first (its event is our notice that
 * the call is over), then {SEND_INITIAL_METADATA, RECV_MESSAGE}; each request
 * is answered with {SEND_MESSAGE}, whose completion starts the next
 * {RECV_MESSAGE}. A NULL message means the client half-closed: we end with
 * OK. So at most one batch besides the close is ever in flight, and only the
 * close event can run concurrently with the chain: it only sets a flag. The
 * context lives until its last batch came back (refs: one per batch in
 * flight, one while setting up). Unknown names get an error_response with
 * NOT_FOUND and the stream stays open. Public: no token is asked for. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "metrics/metrics.h"
#include "transport/descriptors.h"
#include "core/wire_check.h"
#include "interceptors/interceptors.h"
#include "transport/server_internal.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;

/* The one method of each version (its log line, metrics and span). */
static const method_desc refl_method[2] = {
    {.path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     .service = "grpc.reflection.v1.ServerReflection",
     .name = "ServerReflectionInfo"},
    {.path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     .service = "grpc.reflection.v1alpha.ServerReflection",
     .name = "ServerReflectionInfo"},
};

typedef struct refl_call {
  rpc_tag on_new, on_close, on_recv, on_send, on_status;
  rpc_server *srv;
  int slot;
  int version; /* 0 = v1, 1 = v1alpha */
  const descriptors *desc;
  metrics *metrics;
  int metrics_id;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *received; /* RECV_MESSAGE lands here */
  grpc_byte_buffer *sending;
  atomic_int refs;
  atomic_bool closed;
  atomic_int final_code; /* the status we sent; -1 until then */
  int cancelled;
  int64_t start_ns;
  trace_ctx trace; /* for its log line */
} refl_call;

static void on_new(rpc_tag *tag, bool ok);
static void on_close(rpc_tag *tag, bool ok);
static void on_recv(rpc_tag *tag, bool ok);
static void on_send(rpc_tag *tag, bool ok);
static void on_status(rpc_tag *tag, bool ok);

int reflection_post(rpc_server *s, int slot, int version) {
  const descriptors *d = descriptors_builtin();
  if (!d || version < 0 || version > 1) return -1;
  refl_call *r = calloc(1, sizeof(*r));
  if (!r) return -1;
  r->on_new.fn = on_new;
  r->on_close.fn = on_close;
  r->on_recv.fn = on_recv;
  r->on_send.fn = on_send;
  r->on_status.fn = on_status;
  r->srv = s;
  r->slot = slot;
  r->version = version;
  r->desc = d;
  r->metrics = s->opt.metrics;
  r->metrics_id = metrics_method_find(r->metrics, refl_method[version].service,
                                     refl_method[version].name);
  atomic_init(&r->refs, 0);
  atomic_init(&r->closed, false);
  atomic_init(&r->final_code, -1);
  grpc_metadata_array_init(&r->md);
  server_live_inc(s);
  grpc_completion_queue *cq = s->slots[slot].cq;
  /* GRPC_SRM_PAYLOAD_NONE: no payload pointer; messages come by RECV_MESSAGE. */
  if (grpc_server_request_registered_call(s->server, s->reflection_handle[version], &r->call,
                                          &r->deadline, &r->md, NULL, cq, cq,
                                          &r->on_new) != GRPC_CALL_OK) {
    grpc_metadata_array_destroy(&r->md);
    free(r);
    server_live_dec(s);
    return -1;
  }
  return 0;
}

static void refl_free(refl_call *r) {
  rpc_server *s = r->srv;
  if (r->call) grpc_call_unref(r->call);
  grpc_metadata_array_destroy(&r->md);
  if (r->received) grpc_byte_buffer_destroy(r->received);
  if (r->sending) grpc_byte_buffer_destroy(r->sending);
  free(r);
  server_live_dec(s);
}

static void unref(refl_call *r) {
  if (atomic_fetch_sub(&r->refs, 1) == 1) refl_free(r);
}

/* Starts a batch; counts a reference when it started (no event otherwise). */
static bool start(refl_call *r, grpc_op *ops, size_t n, rpc_tag *tag) {
  atomic_fetch_add(&r->refs, 1);
  if (grpc_call_start_batch(r->call, ops, n, tag, NULL) == GRPC_CALL_OK) return true;
  atomic_fetch_sub(&r->refs, 1); /* never the last: the caller holds one */
  return false;
}

/* A batch that could not start leaves the client waiting: end the call. */
static void abort_call(refl_call *r) { grpc_call_cancel(r->call, NULL); }

static void finish(refl_call *r, rpc_code code, const char *msg) {
  if (atomic_load(&r->closed)) return;
  grpc_op op;
  memset(&op, 0, sizeof op);
  grpc_slice details = grpc_slice_from_copied_string(msg);
  op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  op.data.send_status_from_server.status = (grpc_status_code)code;
  op.data.send_status_from_server.status_details = msg[0] ? &details : NULL;
  /* Recorded first: the close event may run on another thread before
   * start() even returns. */
  atomic_store(&r->final_code, (int)code);
  if (!start(r, &op, 1, &r->on_status)) {
    atomic_store(&r->final_code, -1);
    abort_call(r);
  }
  grpc_slice_unref(details);
}


static bool recv_next(refl_call *r, bool with_initial_md) {
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (with_initial_md) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &r->received;
  return start(r, ops, n, &r->on_recv);
}

/* ------------------------------------------------------------ answers --- */

/* The response to one request, packed into a slice; error_response for what
 * we cannot answer. Everything the response points to lives on this stack
 * frame or in the descriptor index. */
static grpc_slice answer(const descriptors *d, const refl_request *req) {
  refl_response resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  resp.valid_host = req->host ? req->host : "";
  resp.original_request = (refl_request *)req;

  Grpc__Reflection__V1__FileDescriptorResponse files =
      GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
  Grpc__Reflection__V1__ExtensionNumberResponse ext =
      GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
  Grpc__Reflection__V1__ListServiceResponse list =
      GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
  Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  char message[320];
  message[0] = '\0';
  rpc_code error_code = RPC_NOT_FOUND; /* when message is set */
  int file = -1;
  Grpc__Reflection__V1__ServiceResponse *services = NULL;
  Grpc__Reflection__V1__ServiceResponse **service_ptrs = NULL;

  switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
      file = descriptors_find_file(d, req->file_by_filename);
      if (file < 0)
        snprintf(message, sizeof message, "file not found");
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
      file = descriptors_find_symbol(d, req->file_containing_symbol);
      if (file < 0)
        snprintf(message, sizeof message, "symbol not found");
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
      /* None of the served files declares an extension. */
      snprintf(message, sizeof message, "extension not found");
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
      if (descriptors_is_message(d, req->all_extension_numbers_of_type)) {
        ext.base_type_name = req->all_extension_numbers_of_type;
        if (ext.base_type_name[0] == '.') ext.base_type_name++;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        resp.all_extension_numbers_response = &ext;
      } else {
        snprintf(message, sizeof message, "type not found");
      }
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
      size_t n = descriptors_service_count(d);
      services = calloc(n ? n : 1, sizeof(*services));
      service_ptrs = calloc(n ? n : 1, sizeof(*service_ptrs));
      if (!services || !service_ptrs) {
        snprintf(message, sizeof message, "out of memory");
        error_code = RPC_RESOURCE_EXHAUSTED;
        break;
      }
      for (size_t i = 0; i < n; i++) {
        grpc__reflection__v1__service_response__init(&services[i]);
        services[i].name = (char *)descriptors_service_name(d, i);
        service_ptrs[i] = &services[i];
      }
      list.n_service = n;
      list.service = service_ptrs;
      resp.message_response_case =
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
      resp.list_services_response = &list;
      break;
    }
    default:
      snprintf(message, sizeof message, "the request names no known message_request");
      error_code = RPC_INVALID_ARGUMENT;
      break;
  }

  if (file >= 0) {
    const ProtobufCBinaryData *closure;
    files.n_file_descriptor_proto = descriptors_closure(d, file, &closure);
    files.file_descriptor_proto = (ProtobufCBinaryData *)closure; /* only read by pack */
    resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp.file_descriptor_response = &files;
  } else if (message[0]) {
    error.error_code = (int32_t)error_code;
    error.error_message = message;
    resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp.error_response = &error;
  }

  size_t len = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
  grpc_slice out = grpc_slice_malloc(len);
  grpc__reflection__v1__server_reflection_response__pack(&resp, GRPC_SLICE_START_PTR(out));
  free(services);
  free(service_ptrs);
  return out;
}

/* Decodes the message in r->received (and frees the buffer); NULL when it
 * is not a ServerReflectionRequest. */
static refl_request *take_request(refl_call *r) {
  grpc_byte_buffer_reader reader;
  refl_request *req = NULL;
  if (grpc_byte_buffer_reader_init(&reader, r->received)) {
    grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    char err[160];
    /* The same wire rules as every call: UTF-8, no NUL, bounded fields. */
    if (wire_check(&grpc__reflection__v1__server_reflection_request__descriptor,
                   GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), err, sizeof err) == 0)
      req = grpc__reflection__v1__server_reflection_request__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                                    GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
  }
  grpc_byte_buffer_destroy(r->received);
  r->received = NULL;
  return req;
}

/* ------------------------------------------------------------- events --- */

static void on_new(rpc_tag *tag, bool ok) {
  refl_call *r = container_of(tag, refl_call, on_new);
  rpc_server *s = r->srv;
  if (!ok) { /* the server is shutting down: this request will never be filled */
    refl_free(r);
    return;
  }
  r->start_ns = clock_mono_ns();
  server_trace_start(&r->md, NULL, &r->trace);
  if (!atomic_load(&s->shutting_down)) reflection_post(s, r->slot, r->version);
  metrics_started(r->metrics, r->metrics_id);

  atomic_store(&r->refs, 1); /* the setup reference */
  grpc_op close_op;
  memset(&close_op, 0, sizeof close_op);
  close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  close_op.data.recv_close_on_server.cancelled = &r->cancelled;
  if (start(r, &close_op, 1, &r->on_close) && !recv_next(r, true)) abort_call(r);
  unref(r);
}

static void on_recv(rpc_tag *tag, bool ok) {
  refl_call *r = container_of(tag, refl_call, on_recv);
  if (!ok || atomic_load(&r->closed)) { /* the call failed: on_close follows */
    unref(r);
    return;
  }
  if (!r->received) { /* half-close: every request was answered */
    finish(r, RPC_OK, "");
    unref(r);
    return;
  }
  metrics_msg_received(r->metrics, r->metrics_id);
  refl_request *req = take_request(r);
  if (!req) {
    finish(r, RPC_INVALID_ARGUMENT, "request is not a valid ServerReflectionRequest");
    unref(r);
    return;
  }
  grpc_slice out = answer(r->desc, req);
  grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
  r->sending = grpc_raw_byte_buffer_create(&out, 1);
  grpc_slice_unref(out);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = r->sending;
  if (!start(r, &op, 1, &r->on_send)) {
    grpc_byte_buffer_destroy(r->sending);
    r->sending = NULL;
    abort_call(r);
  }
  unref(r);
}

static void on_send(rpc_tag *tag, bool ok) {
  refl_call *r = container_of(tag, refl_call, on_send);
  grpc_byte_buffer_destroy(r->sending);
  r->sending = NULL;
  if (ok) metrics_msg_sent(r->metrics, r->metrics_id);
  if (ok && !atomic_load(&r->closed) && !recv_next(r, false)) abort_call(r);
  unref(r);
}

static void on_status(rpc_tag *tag, bool ok) {
  (void)ok;
  unref(container_of(tag, refl_call, on_status));
}

static void on_close(rpc_tag *tag, bool ok) {
  (void)ok; /* always 1 for RECV_CLOSE_ON_SERVER; cancelled says the rest */
  refl_call *r = container_of(tag, refl_call, on_close);
  atomic_store(&r->closed, true);
  int sent = atomic_load(&r->final_code);
  rpc_code code = (rpc_code)sent;
  if (r->cancelled || sent < 0) {
    bool past_deadline =
        gpr_time_cmp(gpr_convert_clock_type(r->deadline, GPR_CLOCK_MONOTONIC),
                     gpr_now(GPR_CLOCK_MONOTONIC)) <= 0;
    code = past_deadline ? RPC_DEADLINE_EXCEEDED : RPC_CANCELLED;
  }
  metrics_handled(r->metrics, r->metrics_id, code, clock_mono_ns() - r->start_ns);
  char *peer = grpc_call_get_peer(r->call);
  const char *path = refl_method[r->version].path;
  server_log_call(path, strlen(path), code, r->start_ns, peer, NULL, &r->trace);
  tracing_outside_pipeline(r->srv->opt.env, &r->trace, &refl_method[r->version], code, NULL,
                           r->start_ns, peer, r->srv->bound_port);
  if (code == RPC_CANCELLED) server_note_cancel(r->srv, peer);
  gpr_free(peer);
  unref(r);
}
