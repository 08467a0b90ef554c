/* Status code names, canonical and grpc-go spellings. */
#include "core/rpc_status.h"

static const char *const canonical[RPC_CODE_COUNT] = {
    "OK",          "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS",    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",       "DATA_LOSS",
    "UNAUTHENTICATED"};

static const char *const go_names[RPC_CODE_COUNT] = {
    "OK",           "Canceled",         "Unknown",           "InvalidArgument",
    "DeadlineExceeded", "NotFound",     "AlreadyExists",     "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted",    "OutOfRange",
    "Unimplemented", "Internal",        "Unavailable",       "DataLoss",
    "Unauthenticated"};

const char *rpc_code_name(rpc_code code) {
  return (unsigned)code < RPC_CODE_COUNT ? canonical[code] : "UNKNOWN";
}

const char *rpc_code_go_name(rpc_code code) {
  return (unsigned)code < RPC_CODE_COUNT ? go_names[code] : "Unknown";
}
