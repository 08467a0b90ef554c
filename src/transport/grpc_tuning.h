#ifndef PRODUCT_TRANSPORT_GRPC_TUNING_H
#define PRODUCT_TRANSPORT_GRPC_TUNING_H
/* Process-wide settings of the libraries under the core, applied once
 * before grpc_init(). */
void grpc_tuning_apply(void);
#endif
