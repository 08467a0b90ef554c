/* google.rpc.Status + RetryInfo, packed with protoc-c; see status_details.h. */
#include "transport/status_details.h"

#include "google/rpc/retry_info.pb-c.h"
#include "google/rpc/status.pb-c.h"

uint8_t *status_details_retry(arena *a, rpc_code code, const char *message, int64_t retry_ms,
                              size_t *len) {
  Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
  delay.seconds = retry_ms / 1000;
  delay.nanos = (int32_t)(retry_ms % 1000) * 1000000;
  Google__Rpc__RetryInfo info = GOOGLE__RPC__RETRY_INFO__INIT;
  info.retry_delay = &delay;
  size_t info_len = google__rpc__retry_info__get_packed_size(&info);
  uint8_t *info_buf = arena_alloc(a, info_len ? info_len : 1);
  if (!info_buf) return NULL;
  google__rpc__retry_info__pack(&info, info_buf);

  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
  any.value.data = info_buf;
  any.value.len = info_len;
  Google__Protobuf__Any *details[1] = {&any};
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  st.code = (int32_t)code;
  st.message = (char *)message; /* protoc-c's type; only read by pack */
  st.n_details = 1;
  st.details = details;
  *len = google__rpc__status__get_packed_size(&st);
  uint8_t *out = arena_alloc(a, *len ? *len : 1);
  if (!out) return NULL;
  google__rpc__status__pack(&st, out);
  return out;
}
