#ifndef PRODUCT_TRANSPORT_WORKERS_H
#define PRODUCT_TRANSPORT_WORKERS_H
/* Completion queues and the threads that poll them. Threads make progress in
 * the core only while they wait in grpc_completion_queue_next, so these are
 * also the I/O threads. */
#include <grpc/grpc.h>

typedef struct rpc_workers rpc_workers;

/* n_cqs queues polled by n_threads threads (at least one per queue), thread
 * i polling queue i % n_cqs. */
int rpc_workers_create(int n_cqs, int n_threads, rpc_workers **out);
int rpc_workers_count(const rpc_workers *w);          /* queues */
grpc_completion_queue *rpc_workers_cq(rpc_workers *w, int i);
int rpc_workers_start(rpc_workers *w);                 /* after the servers started */
/* Shuts every queue down, drains it and joins the threads. Only once every
 * tag that could still complete has completed (see server.c). */
void rpc_workers_stop(rpc_workers *w);
void rpc_workers_destroy(rpc_workers *w);

/* CPUs in this process's affinity mask (taskset), at least 1. */
int rpc_cpu_count(void);

#endif
