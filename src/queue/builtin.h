/* builtin.h: job handlers that belong to the queue itself. */
#ifndef HERALD_QUEUE_BUILTIN_H
#define HERALD_QUEUE_BUILTIN_H

#include "queue.h"

/* queue_ping_run: the "ping" job: succeeds at once. ctx is unused. */
void queue_ping_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

#endif
