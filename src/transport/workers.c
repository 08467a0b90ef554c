/* Worker threads over completion queues; see workers.h. */
#include "transport/workers.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "transport/tag.h"

typedef struct worker {
  pthread_t thread;
  grpc_completion_queue *cq;
  bool started;
} worker;

struct rpc_workers {
  int n_cqs;
  int n_threads;
  grpc_completion_queue **cqs;
  worker *threads;
  bool stopped;
};

int rpc_cpu_count(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

int rpc_workers_create(int n_cqs, int n_threads, rpc_workers **out) {
  rpc_workers *w = calloc(1, sizeof(*w));
  if (!w) return -1;
  w->n_cqs = n_cqs < 1 ? 1 : n_cqs;
  w->n_threads = n_threads < w->n_cqs ? w->n_cqs : n_threads;
  w->cqs = calloc((size_t)w->n_cqs, sizeof(*w->cqs));
  w->threads = calloc((size_t)w->n_threads, sizeof(*w->threads));
  if (!w->cqs || !w->threads) goto fail;
  for (int i = 0; i < w->n_cqs; i++) {
    w->cqs[i] = grpc_completion_queue_create_for_next(NULL);
    if (!w->cqs[i]) goto fail;
  }
  *out = w;
  return 0;
fail:
  rpc_workers_destroy(w);
  return -1;
}

int rpc_workers_count(const rpc_workers *w) { return w->n_cqs; }
grpc_completion_queue *rpc_workers_cq(rpc_workers *w, int i) { return w->cqs[i]; }

static void *worker_main(void *arg) {
  grpc_completion_queue *cq = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) {
      rpc_tag *tag = ev.tag;
      tag->fn(tag, ev.success != 0);
    }
  }
  return NULL;
}

int rpc_workers_start(rpc_workers *w) {
  for (int i = 0; i < w->n_threads; i++) {
    worker *t = &w->threads[i];
    t->cq = w->cqs[i % w->n_cqs];
    if (pthread_create(&t->thread, NULL, worker_main, t->cq) != 0) return -1;
    t->started = true;
  }
  return 0;
}

void rpc_workers_stop(rpc_workers *w) {
  if (w->stopped) return;
  w->stopped = true;
  for (int i = 0; i < w->n_cqs; i++) grpc_completion_queue_shutdown(w->cqs[i]);
  for (int i = 0; i < w->n_threads; i++) {
    if (w->threads[i].started) pthread_join(w->threads[i].thread, NULL);
  }
  /* A queue no thread polled (start failed) still has to be drained. */
  for (int i = 0; i < w->n_cqs; i++) {
    bool polled = false;
    for (int t = i; t < w->n_threads; t += w->n_cqs) polled |= w->threads[t].started;
    if (polled) continue;
    while (grpc_completion_queue_next(w->cqs[i], gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
  }
}

void rpc_workers_destroy(rpc_workers *w) {
  if (!w) return;
  if (w->cqs) {
    bool any = false;
    for (int i = 0; i < w->n_cqs; i++) any |= w->cqs[i] != NULL;
    if (any && !w->stopped) {
      w->stopped = true;
      for (int i = 0; i < w->n_cqs; i++) {
        if (!w->cqs[i]) continue;
        grpc_completion_queue_shutdown(w->cqs[i]);
        while (grpc_completion_queue_next(w->cqs[i], gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
      }
    }
    for (int i = 0; i < w->n_cqs; i++)
      if (w->cqs[i]) grpc_completion_queue_destroy(w->cqs[i]);
  }
  free(w->cqs);
  free(w->threads);
  free(w);
}
