/* builtin.c: job kinds that belong to the queue itself. "ping" does nothing and
 * succeeds: operators and tests use it to see that jobs run, and survive a crash. */
#include "builtin.h"

#include "../util/log.h"

void queue_ping_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    LOG_D("queue.ping", "id=%lld attempts=%u", (long long)j->id, j->attempts);
    r->outcome = JOB_OUT_DONE;
}
