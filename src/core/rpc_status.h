#ifndef PRODUCT_CORE_RPC_STATUS_H
#define PRODUCT_CORE_RPC_STATUS_H
/* gRPC status codes with the core's numbering, so that nothing above the
 * transport needs a grpc_* type. */

typedef enum rpc_code {
  RPC_OK = 0,
  RPC_CANCELLED = 1,
  RPC_UNKNOWN = 2,
  RPC_INVALID_ARGUMENT = 3,
  RPC_DEADLINE_EXCEEDED = 4,
  RPC_NOT_FOUND = 5,
  RPC_ALREADY_EXISTS = 6,
  RPC_PERMISSION_DENIED = 7,
  RPC_RESOURCE_EXHAUSTED = 8,
  RPC_FAILED_PRECONDITION = 9,
  RPC_ABORTED = 10,
  RPC_OUT_OF_RANGE = 11,
  RPC_UNIMPLEMENTED = 12,
  RPC_INTERNAL = 13,
  RPC_UNAVAILABLE = 14,
  RPC_DATA_LOSS = 15,
  RPC_UNAUTHENTICATED = 16,
} rpc_code;

#define RPC_CODE_COUNT 17

/* "INVALID_ARGUMENT" (the canonical upper-case name used in logs and by the CLI). */
const char *rpc_code_name(rpc_code code);
/* "InvalidArgument" (grpc-go's spelling, used by the metrics). */
const char *rpc_code_go_name(rpc_code code);

#endif
