/* health.c: liveness, readiness, Prometheus metrics, and POST /debug (the key check
 * Segment's Courier (Actions) destination runs as its "test connection"). */
#include "api.h"

#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <stdio.h>

static const char *state_name(int st)
{
    switch (st) {
    case JOB_QUEUED:
        return "queued";
    case JOB_LEASED:
        return "leased";
    case JOB_DEAD:
        return "dead";
    }
    return "unknown";
}

void api_health(void *vctx, struct http_req *req, struct http_resp *resp)
{
    http_resp_raw(resp, 200, "application/json", STR_LIT("{\"status\":\"ok\"}"));
}

/* POST /debug: Courier's connectivity check. Segment's Courier (Actions) destination posts
 * here with its Bearer key when a user tests the connection, and accepts any 2xx; the
 * admin-key check in front of this route is the test. The body, if any, is ignored. */
void api_debug(void *vctx, struct http_req *req, struct http_resp *resp)
{
    http_resp_raw(resp, 200, "application/json", STR_LIT("{\"status\":\"ok\"}"));
}

void api_ready(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct store_stats st;
    int rc = store_ping(ctx->store);
    if (rc == HR_FULL) { /* reads work, writes do not: not ready for traffic */
        api_error_store_full(resp);
        return;
    }
    if (rc < 0)
        store_stats(ctx->store, &st);
    if (rc < 0 && st.corrupt) {
        /* a damaged file does not heal: no Retry-After, an operator must restore it */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "message", "the store's database file is corrupt; stop "
                                              "herald and restore the store from a backup");
        cJSON_AddStringToObject(o, "type", "api_error");
        cJSON_AddStringToObject(o, "code", "store_corrupt");
        http_resp_json(resp, 503, o);
        cJSON_Delete(o);
        return;
    }
    if (rc < 0) {
        http_resp_header(resp, "Retry-After", "1");
        http_resp_error(resp, 503, "api_error", "the store is not reachable");
        return;
    }
    http_resp_raw(resp, 200, "application/json", STR_LIT("{\"status\":\"ready\"}"));
}

void api_metrics(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct job_count *jc = NULL;
    struct store_stats st;
    uint64_t heap = 0;
    size_t n = 0;
    int rc;

    rc = metrics_render(&resp->body);
    if (rc == HR_OK)
        rc = buf_append_c(&resp->body,
                          "# HELP herald_queue_depth Jobs in the queue by kind and state.\n"
                          "# TYPE herald_queue_depth gauge\n");
    if (rc == HR_OK && store_job_counts(ctx->store, req->arena, &jc, &n) == HR_OK)
        for (size_t i = 0; i < n && rc == HR_OK; i++)
            rc = buf_printf(&resp->body, "herald_queue_depth{kind=\"%s\",state=\"%s\"} %lld\n",
                            jc[i].kind, state_name(jc[i].state), (long long)jc[i].count);
    store_stats(ctx->store, &st);
    if (rc == HR_OK)
        rc = buf_printf(&resp->body,
                        "# HELP herald_store_transactions_total Write transactions run.\n"
                        "# TYPE herald_store_transactions_total counter\n"
                        "herald_store_transactions_total %llu\n"
                        "# HELP herald_store_commits_total Physical commits (fsyncs); fewer "
                        "than transactions when group commit batches them.\n"
                        "# TYPE herald_store_commits_total counter\n"
                        "herald_store_commits_total %llu\n"
                        "# HELP herald_store_commit_errors_total Commits that failed.\n"
                        "# TYPE herald_store_commit_errors_total counter\n"
                        "herald_store_commit_errors_total %llu\n"
                        "# HELP herald_store_retries_total Transactions run again after a "
                        "deadlock or serialization failure (PostgreSQL).\n"
                        "# TYPE herald_store_retries_total counter\n"
                        "herald_store_retries_total %llu\n"
                        "# HELP herald_store_full 1 while writes fail because the disk is "
                        "full.\n"
                        "# TYPE herald_store_full gauge\n"
                        "herald_store_full %d\n"
                        "# HELP herald_store_corrupt 1 once a statement found the store's "
                        "file corrupt (SQLite).\n"
                        "# TYPE herald_store_corrupt gauge\n"
                        "herald_store_corrupt %d\n"
                        "# HELP herald_store_engine_bytes Heap the embedded store engine holds "
                        "for its cache (SQLite: the writer's page cache, at most 64 MiB; 0 on "
                        "PostgreSQL).\n"
                        "# TYPE herald_store_engine_bytes gauge\n"
                        "herald_store_engine_bytes %llu\n",
                        (unsigned long long)st.txns, (unsigned long long)st.commits,
                        (unsigned long long)st.errors, (unsigned long long)st.retries, st.full ? 1 : 0,
                        st.corrupt ? 1 : 0, (unsigned long long)st.engine_bytes);
    if (rc == HR_OK && xalloc_allocated(&heap) == 0)
        rc = buf_printf(&resp->body,
                        "# HELP herald_heap_allocated_bytes Heap handed out and not yet freed "
                        "(the allocator's count, less jemalloc's thread caches; unlike RSS it falls "
                        "when memory is freed; absent under ASan and TSan; "
                        "includes herald_store_engine_bytes).\n"
                        "# TYPE herald_heap_allocated_bytes gauge\n"
                        "herald_heap_allocated_bytes %llu\n",
                        (unsigned long long)heap);
    if (rc < 0) {
        buf_reset(&resp->body);
        http_resp_error(resp, 500, "api_error", "could not render metrics");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* GET /admin/queue: job counts by kind and state, and the newest 50 dead letters. */
void api_admin_queue(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct job_count *jc = NULL;
    size_t n = 0;
    cJSON *root = cJSON_CreateObject(), *jobs = cJSON_AddArrayToObject(root, "jobs");
    int rc = store_job_counts(ctx->store, req->arena, &jc, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", jc[i].kind);
        cJSON_AddStringToObject(o, "state", state_name(jc[i].state));
        cJSON_AddNumberToObject(o, "count", (double)jc[i].count);
        cJSON_AddItemToArray(jobs, o);
    }
    {
        struct job *dj = NULL;
        size_t nd = 0;
        cJSON *dead = cJSON_AddArrayToObject(root, "dead");
        rc = store_job_list(ctx->store, JOB_DEAD, 50, req->arena, &dj, &nd);
        if (rc < 0) {
            api_error_rc(resp, rc, NULL);
            goto out;
        }
        for (size_t i = 0; i < nd; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)dj[i].id);
            cJSON_AddStringToObject(o, "kind", dj[i].kind);
            cJSON_AddNumberToObject(o, "attempts", dj[i].attempts);
            cJSON_AddStringToObject(o, "last_error", dj[i].last_error.p ? dj[i].last_error.p : "");
            cJSON_AddNumberToObject(o, "created_ms", (double)dj[i].created_ms);
            cJSON_AddItemToArray(dead, o);
        }
    }
    http_resp_json(resp, 200, root);
out:
    cJSON_Delete(root);
}
