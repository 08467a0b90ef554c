/* --discover ETCD_URL: pick a product-server that registered itself in etcd
 * under /services/product-service/<addr> (see the contract's "Service
 * registration"). The hook is here so that main.c need not change when the
 * etcd lookup arrives; until then it reports that it is not supported. */
#include <stdio.h>

#include "product_client.h"

int discover_pick(const char *etcd_url, char *addr, size_t addrlen, char *err, size_t errlen) {
  (void)etcd_url;
  if (addrlen > 0)
    addr[0] = '\0';
  snprintf(err, errlen, "--discover is not supported yet");
  return RPC_UNIMPLEMENTED;
}
