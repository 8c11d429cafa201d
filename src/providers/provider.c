/* provider.c: the one way an attempt runs, for every provider that calls out: build a
 * transport request, hand it to the process's transport, classify the answer. Blocking
 * (provider_send, behind ops->send) and asynchronous (provider_start) share the code. */
#include "../util/log.h"
#include "../util/xalloc.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_outcome(const struct provider_ops *ops, const struct delivery *d,
                        const struct delivery_result *r)
{
    LOG_D("provider.send", "provider_key=%s message_id=%s provider=%s outcome=%d status=%d",
          ops->name, d->message_id ? d->message_id : "", d->provider_id ? d->provider_id : "",
          r->outcome, r->remote_status);
}

/* classify: ops->classify over a zeroed r. */
static void classify(const struct provider_ops *ops, const struct delivery *d,
                     const struct transport_resp *resp, struct delivery_result *r)
{
    memset(r, 0, sizeof *r);
    ops->classify(d, resp, r);
    log_outcome(ops, d, r);
}

void provider_send(const struct provider_ops *ops, const struct delivery *d,
                   struct delivery_result *r)
{
    struct transport_req req;
    struct transport_resp resp;
    transport_req_init(&req);
    transport_resp_init(&resp);
    memset(r, 0, sizeof *r);
    if (ops->build(d, &req, r) < 0) {
        log_outcome(ops, d, r);
        goto out;
    }
    transport_perform(transport_default(), &req, &resp);
    classify(ops, d, &resp, r);
out:
    transport_req_cleanup(&req);
    transport_resp_cleanup(&resp);
}

/* One provider_start attempt in flight: what the completion needs. */
struct attempt {
    const struct provider_ops *ops;
    const struct delivery *d; /* the caller's; valid until done runs */
    provider_done_fn done;
    void *arg;
};

static void attempt_done(void *arg, struct transport_resp *resp)
{
    struct attempt *a = arg;
    struct delivery_result r;
    classify(a->ops, a->d, resp, &r);
    a->done(a->arg, &r);
    free(a);
}

void provider_start(const struct provider_ops *ops, const struct delivery *d,
                    provider_done_fn done, void *arg)
{
    struct delivery_result r;
    struct transport_req req;
    struct transport_resp resp;
    struct transport *t;
    struct attempt *a;
    struct herr err = {0};

    memset(&r, 0, sizeof r);
    if (!ops->build) {
        ops->send(d, &r); /* nothing to wait for (console) */
        done(arg, &r);
        return;
    }
    transport_req_init(&req);
    if (ops->build(d, &req, &r) < 0) {
        transport_req_cleanup(&req);
        log_outcome(ops, d, &r);
        done(arg, &r);
        return;
    }
    a = xcalloc(1, sizeof *a);
    *a = (struct attempt){.ops = ops, .d = d, .done = done, .arg = arg};
    t = transport_default();
    if (t && transport_submit(t, &req, attempt_done, a, &err) == HR_OK)
        return;
    /* refused (full, shut down, a bad URL): classified like a call that got no answer */
    transport_req_cleanup(&req);
    transport_resp_init(&resp);
    resp.rc = t ? err.rc : HR_UNAVAIL;
    snprintf(resp.http.error, sizeof resp.http.error, "%s",
             t ? err.msg : "transport: not running");
    attempt_done(a, &resp);
    transport_resp_cleanup(&resp);
}
