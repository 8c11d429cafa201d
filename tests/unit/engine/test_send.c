/* test_send.c: the sending pipeline's jobs (send.route, send.deliver) driven by hand
 * over a real SQLite store with a manual clock, queue_run_once and the console
 * provider (it answers SENT at once, on the calling thread): a message routed to one
 * channel is delivered by its route job itself, with one commit and no send.deliver
 * job; a provider at its concurrency cap, or two channels, hand over to send.deliver
 * jobs as before; the history keeps its order either way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/engine/defcache.h"
#include "../../../src/engine/hooks.h"
#include "../../../src/engine/send.h"
#include "../../../src/queue/queue.h"
#include "../../../src/render/hbs.h"
#include "../../../src/store/store.h"
#include "../../../src/util/arena.h"
#include "../../../src/util/json.h"
#include "../../../src/util/log.h"
#include "../../../src/util/str.h"
#include "engine_fx.h"
#include "../temp_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL

struct fx {
    struct temp_store ts;
    struct hclock_manual clk;
    struct store *s;
    struct engine e;
    struct queue *q;
    struct arena *a;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct queue_cfg cfg;
    struct job_handler hs[2];
    hclock_manual_init(&f->clk, T0);
    if (temp_store_open(&f->ts, &f->clk.base, &f->s) < 0)
        return -1;
    f->e.store = f->s;
    f->e.clock = &f->clk.base;
    f->e.hbs = hbs_cache_new(64, 1u << 20);
    f->e.message_timeout_ms = SEND_TIMEOUT_DEFAULT_MS;
    f->e.provider_timeout_ms = 10000;
    f->e.backoff_base_ms = 1000;
    f->e.backoff_max_ms = 3600000;
    f->e.limits = limit_table_new(0);
    f->e.provider_concurrency = ENGINE_PROVIDER_CONCURRENCY_DEFAULT;
    hs[0] = (struct job_handler){SEND_ROUTE_KIND, engine_route_run, &f->e};
    hs[1] = (struct job_handler){SEND_DELIVER_KIND, engine_deliver_run, &f->e};
    queue_cfg_defaults(&cfg);
    f->q = queue_new(f->s, &f->clk.base, &cfg, hs, 2);
    f->a = arena_new(4096);
    *state = f;
    return f->q && f->e.hbs && f->e.limits ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    queue_free(f->q);
    store_close(f->s);
    hbs_cache_free(f->e.hbs);
    limit_table_free(f->e.limits);
    arena_free(f->a);
    temp_store_remove(&f->ts);
    free(f);
    return 0;
}

static size_t run_jobs(struct fx *f) { return fx_run_jobs(f->q); }

static int64_t count_jobs(struct fx *f, const char *kind)
{
    return fx_count_jobs(f->s, f->a, kind);
}

static void put_doc(struct fx *f, const char *coll, const char *id, const char *body)
{
    fx_put_doc(f->s, hclock_now(&f->clk.base), coll, id, body);
}

/* console: a console provider for channel ch with the given limits (JSON or NULL) */
static void console(struct fx *f, const char *id, const char *ch, const char *limits)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"provider\":\"console\",\"channel\":\"%s\",\"enabled\":true,"
             "\"priority\":1,\"settings\":{}%s%s}",
             id, ch, limits ? ",\"limits\":" : "", limits ? limits : "");
    put_doc(f, "providers", id, body);
}

struct send_arg {
    struct engine *e;
    cJSON *msg;
    const char *request_id;
};

static int send_tx(struct store_txn *t, void *varg)
{
    struct send_arg *s = varg;
    return engine_send_enqueue(s->e, t, s->msg, s->request_id, NULL, NULL);
}

/* send: POST /send's message (JSON) as request id; one recipient: the message's id is
 * the request id */
static void send(struct fx *f, const char *id, const char *msg_json)
{
    struct send_arg s = {&f->e, cJSON_Parse(msg_json), id};
    struct herr err;
    herr_clear(&err);
    assert_non_null(s.msg);
    assert_int_equal(engine_send_validate(s.msg, &err), HR_OK);
    assert_int_equal(store_write(f->s, send_tx, &s, &err), HR_OK);
    cJSON_Delete(s.msg);
}

static void assert_status(struct fx *f, const char *id, const char *want)
{
    struct message_rec m;
    assert_int_equal(store_message_get(f->s, str_c(id), f->a, &m), HR_OK);
    if (!str_eq_c(m.status, want))
        fail_msg("message %s: want %s, got %.*s", id, want, (int)m.status.len, m.status.p);
}

/* history: the message's history types joined by ',' into buf; fails when a time goes
 * backwards */
static const char *history(struct fx *f, const char *id, char *buf, size_t cap)
{
    struct history_rec *h = NULL;
    size_t n = 0, used = 0;
    int64_t last = 0;
    assert_int_equal(store_history_list(f->s, str_c(id), STR_NULL, f->a, &h, &n), HR_OK);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (h[i].ts < last)
            fail_msg("history of %s: %.*s at %lld is before the event ahead of it", id,
                     (int)h[i].type.len, h[i].type.p, (long long)h[i].ts);
        last = h[i].ts;
        {   /* each body is one JSON object that starts with its own ts and type */
            cJSON *b = cJSON_ParseWithLength(h[i].body.p, h[i].body.len);
            int64_t ts = 0;
            char head[96];
            int hn = snprintf(head, sizeof head, "{\"ts\":%lld,\"type\":\"%.*s\"",
                              (long long)h[i].ts, (int)h[i].type.len, h[i].type.p);
            if (!cJSON_IsObject(b) || !json_i64(b, "ts", &ts) || ts != h[i].ts ||
                !json_str(b, "type") || !str_eq_c(h[i].type, json_str(b, "type")) ||
                h[i].body.len < (size_t)hn || memcmp(h[i].body.p, head, (size_t)hn) != 0)
                fail_msg("history of %s: body %.*s", id, (int)h[i].body.len, h[i].body.p);
            cJSON_Delete(b);
        }
        used += (size_t)snprintf(buf + used, cap - used, "%s%.*s", i ? "," : "",
                                 (int)h[i].type.len, h[i].type.p);
        assert_true(used < cap);
    }
    return buf;
}

#define ONE_EMAIL                                                                            \
    "{\"to\":{\"email\":\"a@example.com\"},\"content\":{\"title\":\"Hi\",\"body\":\"there\"}," \
    "\"routing\":{\"method\":\"single\",\"channels\":[\"email\"]}}"

/* The ENQUEUED row holds no copy of the message's data; engine_history_body shows it
 * with the data from the spec. A row written with its data (before) comes back as it is,
 * and other rows as stored. */
static void test_enqueued_history_data_from_spec(void **state)
{
    struct fx *f = *state;
    struct message_rec m;
    struct history_rec *h = NULL, old;
    size_t n = 0;
    struct str shown;
    cJSON *b;
    send(f, "m9",
         "{\"to\":{\"email\":\"a@example.com\"},\"content\":{\"title\":\"Hi\",\"body\":\"x\"},"
         "\"data\":{\"order\":{\"id\":\"o-1\",\"total\":49.99}}}");
    assert_int_equal(store_message_get(f->s, str_c("m9"), f->a, &m), HR_OK);
    assert_int_equal(store_history_list(f->s, str_c("m9"), STR_NULL, f->a, &h, &n), HR_OK);
    assert_int_equal(n, 1);
    assert_true(str_eq_c(h[0].type, "ENQUEUED"));
    b = cJSON_ParseWithLength(h[0].body.p, h[0].body.len);
    assert_non_null(b);
    assert_null(cJSON_GetObjectItemCaseSensitive(b, "data")); /* not stored */
    cJSON_Delete(b);
    assert_int_equal(engine_history_body(&f->e, &m, &h[0], f->a, &shown), HR_OK);
    b = cJSON_ParseWithLength(shown.p, shown.len);
    assert_non_null(b);
    assert_string_equal(json_str(json_obj(json_obj(b, "data"), "order"), "id"), "o-1");
    assert_string_equal(json_str(b, "type"), "ENQUEUED");
    assert_string_equal(json_str(b, "recipient"), "a@example.com");
    cJSON_Delete(b);
    old = h[0];
    old.body = str_c("{\"ts\":1,\"type\":\"ENQUEUED\",\"data\":{\"was\":1}}");
    assert_int_equal(engine_history_body(&f->e, &m, &old, f->a, &shown), HR_OK);
    assert_true(str_eq_c(shown, old.body.p));
    old.type = str_c("SENT");
    old.body = str_c("{\"ts\":1,\"type\":\"SENT\"}");
    assert_int_equal(engine_history_body(&f->e, &m, &old, f->a, &shown), HR_OK);
    assert_true(str_eq_c(shown, old.body.p));
}

struct ev_send_arg {
    struct engine *e;
    cJSON *msg;
    const char *request_id, *body;
    int64_t event_id; /* 0: store body as a new event and refer to it */
};

static int ev_send_tx(struct store_txn *t, void *varg)
{
    struct ev_send_arg *s = varg;
    struct event_rec rec = {.source_id = 1, .message_id = str_c(s->request_id),
                            .type = str_c("track"), .user_id = STR_NULL,
                            .body = str_c(s->body), .received_ms = hclock_now(s->e->clock)};
    int rc = HR_OK;
    if (s->event_id == 0)
        rc = store_event_insert(t, &rec, 0, &s->event_id);
    if (rc == HR_OK)
        rc = engine_send_enqueue_ev(s->e, t, s->msg, s->request_id, NULL, NULL, s->event_id);
    return rc;
}

/* history_body: the body of message id's first history row of type, as the API shows it
 * (parsed, caller owns), or NULL */
static cJSON *history_body(struct fx *f, const char *id, const char *type)
{
    struct message_rec m;
    struct history_rec *h = NULL;
    size_t n = 0;
    struct str shown;
    assert_int_equal(store_message_get(f->s, str_c(id), f->a, &m), HR_OK);
    assert_int_equal(store_history_list(f->s, str_c(id), str_c(type), f->a, &h, &n), HR_OK);
    if (n == 0)
        return NULL;
    assert_int_equal(engine_history_body(&f->e, &m, &h[0], f->a, &shown), HR_OK);
    return cJSON_ParseWithLength(shown.p, shown.len);
}

/* A message whose data is its event's (an automation's send step) stores the event's id,
 * not the data; the route renders with the data derived from the stored event, and the
 * history shows it. Without event_data, or for a plain send, the spec keeps the data.
 * An event that is gone makes the message UNDELIVERABLE, not a crash or a retry loop. */
static void test_message_data_from_event(void **state)
{
    struct fx *f = *state;
    const char *msg = "{\"to\":{\"email\":\"a@example.com\"},\"content\":{\"title\":\"Hi\","
                      "\"body\":\"order {{order_id}} {{derived}}\"},\"data\":{\"order_id\":"
                      "\"o-7\"}}";
    struct ev_send_arg s = {&f->e, cJSON_Parse(msg), "me1", "{\"type\":\"track\","
                            "\"order_id\":\"o-7\"}", 0};
    struct message_rec m;
    struct herr err;
    cJSON *spec, *b, *data;
    herr_clear(&err);
    console(f, "c1", "email", NULL);
    f->e.event_data = fx_event_data_tagged;
    assert_int_equal(store_write(f->s, ev_send_tx, &s, &err), HR_OK);
    assert_true(s.event_id > 0);
    assert_int_equal(store_message_get(f->s, str_c("me1"), f->a, &m), HR_OK);
    spec = cJSON_ParseWithLength(m.spec.p, m.spec.len);
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, "data")); /* not stored */
    {
        int64_t ev = 0;
        assert_true(json_i64(spec, SPEC_DATA_EVENT, &ev));
        assert_int_equal(ev, s.event_id);
    }
    assert_int_equal(engine_spec_data(&f->e, spec), HR_OK); /* derived back */
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, SPEC_DATA_EVENT));
    data = json_obj(spec, "data");
    assert_string_equal(json_str(data, "order_id"), "o-7");
    assert_string_equal(json_str(data, "derived"), "yes");
    assert_null(cJSON_GetObjectItemCaseSensitive(data, "taken"));
    cJSON_Delete(spec);
    /* with event_data_take, the event parsed for it is taken, not copied (ASan: nothing
     * leaked, nothing freed twice) */
    f->e.event_data_take = fx_event_data_tagged_take;
    spec = cJSON_ParseWithLength(m.spec.p, m.spec.len);
    assert_int_equal(engine_spec_data(&f->e, spec), HR_OK);
    data = json_obj(spec, "data");
    assert_string_equal(json_str(data, "order_id"), "o-7");
    assert_string_equal(json_str(data, "taken"), "yes");
    cJSON_Delete(spec);
    f->e.event_data_take = NULL;
    b = history_body(f, "me1", "ENQUEUED");
    assert_string_equal(json_str(json_obj(b, "data"), "derived"), "yes");
    cJSON_Delete(b);
    run_jobs(f);
    assert_status(f, "me1", "SENT");
    b = history_body(f, "me1", "RENDERED");
    assert_non_null(strstr(json_str(json_obj(b, "output"), "text"), "order o-7 yes"));
    cJSON_Delete(b);

    /* an event that is not stored: UNDELIVERABLE, with why */
    s.request_id = "me2";
    s.event_id = 999999;
    assert_int_equal(store_write(f->s, ev_send_tx, &s, &err), HR_OK);
    run_jobs(f);
    assert_status(f, "me2", "UNDELIVERABLE");
    assert_int_equal(store_message_get(f->s, str_c("me2"), f->a, &m), HR_OK);
    assert_non_null(strstr(m.error.p, "event"));
    b = history_body(f, "me2", "ENQUEUED"); /* the row as stored, without data */
    assert_non_null(b);
    assert_null(cJSON_GetObjectItemCaseSensitive(b, "data"));
    cJSON_Delete(b);

    /* no event_data: the data is stored as it is, whatever the caller passed */
    f->e.event_data = NULL;
    s.request_id = "me3";
    s.event_id = 0;
    assert_int_equal(store_write(f->s, ev_send_tx, &s, &err), HR_OK);
    assert_int_equal(store_message_get(f->s, str_c("me3"), f->a, &m), HR_OK);
    spec = cJSON_ParseWithLength(m.spec.p, m.spec.len);
    assert_string_equal(json_str(json_obj(spec, "data"), "order_id"), "o-7");
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, SPEC_DATA_EVENT));
    cJSON_Delete(spec);
    run_jobs(f);
    b = history_body(f, "me3", "RENDERED");
    assert_non_null(strstr(json_str(json_obj(b, "output"), "text"), "order o-7"));
    assert_null(strstr(json_str(json_obj(b, "output"), "text"), "yes"));
    cJSON_Delete(b);
    cJSON_Delete(s.msg);

    /* a caller's message cannot smuggle a reference in: it is not stored */
    f->e.event_data = fx_event_data_tagged;
    send(f, "me4", "{\"to\":{\"email\":\"a@example.com\"},\"content\":{\"title\":\"Hi\","
                   "\"body\":\"x\"},\"data_event\":1}");
    assert_int_equal(store_message_get(f->s, str_c("me4"), f->a, &m), HR_OK);
    spec = cJSON_ParseWithLength(m.spec.p, m.spec.len);
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, SPEC_DATA_EVENT));
    cJSON_Delete(spec);
}

/* One channel: the route job makes the call itself and commits routing and outcome
 * together: one job ran, no send.deliver job was ever queued, the history reads as it
 * did with two jobs, in time order. */
static void test_route_delivers_one_channel(void **state)
{
    struct fx *f = *state;
    char h[256];
    console(f, "c1", "email", NULL);
    send(f, "m1", ONE_EMAIL);
    assert_int_equal(count_jobs(f, SEND_ROUTE_KIND), 1);
    hclock_manual_advance(&f->clk, 5);
    assert_int_equal(run_jobs(f), 1);
    assert_int_equal(count_jobs(f, SEND_ROUTE_KIND) + count_jobs(f, SEND_DELIVER_KIND), 0);
    assert_status(f, "m1", "SENT");
    assert_string_equal(history(f, "m1", h, sizeof h),
                        "ENQUEUED,PROFILE_LOADED,RENDERED,DELIVERING,SENT");
    assert_int_equal(limit_in_flight(f->e.limits, "c1"), 0); /* the slot is free again */
    /* the console takes no receipts: its reference is in the state, not in the index
     * receipts look messages up by */
    {
        struct message_rec m;
        struct msgref_rec r;
        struct doc_rec d;
        cJSON *out = NULL, *res;
        assert_int_equal(store_message_get(f->s, STR_LIT("m1"), f->a, &m), HR_OK);
        assert_non_null(strstr(m.state.p, "\"console-m1\""));
        assert_int_equal(store_msgref_get(f->s, STR_LIT("console"), STR_LIT("console-m1"), f->a,
                                          &r),
                         HR_NOTFOUND);
        /* sent at once: no outputs document; the outputs come from the RENDERED event */
        assert_int_equal(store_doc_get(f->s, "outputs", STR_LIT("m1"), f->a, &d), HR_NOTFOUND);
        assert_int_equal(engine_message_outputs(f->s, STR_LIT("m1"), f->a, &out), HR_OK);
        assert_int_equal(cJSON_GetArraySize(json_arr(out, "results")), 1);
        res = cJSON_GetArrayItem(json_arr(out, "results"), 0);
        assert_string_equal(json_str(res, "channel"), "email");
        assert_string_equal(json_str(res, "channel_id"), "email");
        assert_non_null(json_str(json_obj(res, "content"), "subject"));
        cJSON_Delete(out);
    }
}

static int mark_routed_fn(struct store_txn *t, void *arg)
{
    struct arena *a = arena_new(4096);
    struct message_rec m;
    int rc = store_message_get_txn(t, str_c(arg), a, &m);
    if (rc == HR_OK) {
        m.status = STR_LIT("ROUTED");
        rc = store_message_update(t, &m);
    }
    arena_free(a);
    return rc;
}

/* A routing that replaces an earlier one (as the next alternative does: the message is
 * ROUTED, that routing's outputs document stored) and sends at once removes that
 * document: the outputs are the new routing's, not the stale ones. */
static void test_reroute_sent_at_once_drops_old_outputs(void **state)
{
    struct fx *f = *state;
    struct herr err;
    struct doc_rec d;
    cJSON *out = NULL;
    herr_clear(&err);
    console(f, "c1", "email", NULL);
    send(f, "m2", ONE_EMAIL);
    assert_int_equal(store_write(f->s, mark_routed_fn, "m2", &err), HR_OK);
    put_doc(f, "outputs", "m2", "{\"results\":[{\"channel\":\"sms\",\"channel_id\":\"sms\","
                                "\"content\":{\"body\":\"old\"}}]}");
    hclock_manual_advance(&f->clk, 5);
    assert_int_equal(run_jobs(f), 1);
    assert_status(f, "m2", "SENT");
    assert_int_equal(store_doc_get(f->s, "outputs", STR_LIT("m2"), f->a, &d), HR_NOTFOUND);
    assert_int_equal(engine_message_outputs(f->s, STR_LIT("m2"), f->a, &out), HR_OK);
    assert_string_equal(json_str(cJSON_GetArrayItem(json_arr(out, "results"), 0), "channel"),
                        "email");
    cJSON_Delete(out);
}

struct hist_put {
    const char *id, *types[3], *bodies[3];
    size_t n;
};

static int hist_put_fn(struct store_txn *t, void *arg)
{
    struct hist_put *h = arg;
    struct history_row rows[3];
    for (size_t i = 0; i < h->n; i++)
        rows[i] = (struct history_row){1000 + (int64_t)i, str_c(h->types[i]), str_c(h->bodies[i])};
    return store_history_append_many(t, str_c(h->id), rows, h->n);
}

/* engine_message_outputs: the outputs document when there is one; else the last
 * RENDERED event when a SENT follows it, as the document would hold it; none, or a
 * routing that did not send: HR_NOTFOUND; a RENDERED event without its output: HR_IO. */
static void test_message_outputs(void **state)
{
    struct fx *f = *state;
    struct herr err;
    cJSON *out = NULL;
    char *s;
    struct hist_put first = {"o1", {"RENDERED", "DELIVERING", "UNDELIVERABLE"},
                             {"{\"channel\":{\"id\":\"email\"},\"output\":{\"subject\":\"A\"}}",
                              "{}", "{}"}, 3};
    struct hist_put second = {"o1", {"PROFILE_LOADED", "RENDERED", "SENT"},
                              {"{}", "{\"channel\":{\"id\":\"sms\"},\"output\":{\"body\":\"B\"}}",
                               "{}"}, 3};
    struct hist_put bad = {"o2", {"RENDERED", "SENT"}, {"{\"channel\":{\"id\":\"sms\"}}", "{}"}, 2};
    struct hist_put failed = {"o3", {"PROFILE_LOADED", "RENDERED", "UNDELIVERABLE"},
                              {"{}", "{\"channel\":{\"id\":\"email\"},\"output\":{}}", "{}"}, 3};
    herr_clear(&err);
    assert_int_equal(engine_message_outputs(f->s, STR_LIT("o1"), f->a, &out), HR_NOTFOUND);
    assert_null(out);
    assert_int_equal(store_write(f->s, hist_put_fn, &first, &err), HR_OK);
    assert_int_equal(store_write(f->s, hist_put_fn, &second, &err), HR_OK);
    assert_int_equal(engine_message_outputs(f->s, STR_LIT("o1"), f->a, &out), HR_OK);
    s = json_print(out);
    assert_string_equal(s, "{\"results\":[{\"channel\":\"sms\",\"channel_id\":\"sms\","
                           "\"content\":{\"body\":\"B\"}}]}");
    free(s);
    cJSON_Delete(out);
    put_doc(f, "outputs", "o1", "{\"results\":[{\"channel\":\"push\"}]}");
    assert_int_equal(engine_message_outputs(f->s, STR_LIT("o1"), f->a, &out), HR_OK);
    assert_string_equal(json_str(cJSON_GetArrayItem(json_arr(out, "results"), 0), "channel"),
                        "push");
    cJSON_Delete(out);
    assert_int_equal(store_write(f->s, hist_put_fn, &bad, &err), HR_OK);
    assert_int_equal(engine_message_outputs(f->s, STR_LIT("o2"), f->a, &out), HR_IO);
    assert_null(out);
    /* a routing that failed part way (no SENT after its RENDERED) shows nothing */
    assert_int_equal(store_write(f->s, hist_put_fn, &failed, &err), HR_OK);
    assert_int_equal(engine_message_outputs(f->s, STR_LIT("o3"), f->a, &out), HR_NOTFOUND);
    assert_null(out);
}

/* A provider at its concurrency cap: the route commits ROUTED and a send.deliver job,
 * which defers until the slot is free, then delivers. */
static void test_route_at_cap_hands_over(void **state)
{
    struct fx *f = *state;
    struct limit_cfg lc = {.concurrency = 1};
    char h[256];
    bool held = false, at_cap = false;
    int64_t at = 0, t_held = hclock_now(&f->clk.base);
    console(f, "c1", "email", "{\"concurrency\":1}");
    assert_int_equal(limit_acquire(f->e.limits, "c1", &lc, t_held, &held, &at, &at_cap), 0);
    assert_true(held);
    send(f, "m2", ONE_EMAIL);
    run_jobs(f);
    assert_status(f, "m2", "ROUTED");
    assert_int_equal(count_jobs(f, SEND_ROUTE_KIND), 0);
    assert_int_equal(count_jobs(f, SEND_DELIVER_KIND), 1);
    limit_release(f->e.limits, "c1", t_held, hclock_now(&f->clk.base));
    hclock_manual_advance(&f->clk, 60000);
    assert_true(run_jobs(f) >= 1);
    assert_status(f, "m2", "SENT");
    assert_int_equal(count_jobs(f, SEND_DELIVER_KIND), 0);
    assert_string_equal(history(f, "m2", h, sizeof h),
                        "ENQUEUED,PROFILE_LOADED,RENDERED,DELIVERING,SENT");
}

static int del_provider_tx(struct store_txn *t, void *arg)
{
    return store_doc_delete(t, "providers", str_c(arg));
}

/* With the engine's provider cache (main's) on a store this process owns (SQLite: every
 * provider change goes through it and drops the cache), a delivery takes the provider's
 * record from the set routing chose it from, holding a reference until its call ends
 * (ASan: the sets are freed with the cache, none kept). A provider the cache no longer
 * holds when the delivery starts (removed after routing) is read from the store, which
 * says it is gone: UNDELIVERABLE with why, as without the cache. */
static void test_deliver_provider_from_cache(void **state)
{
    struct fx *f = *state;
    struct herr err;
    char h[256];
    bool held = false, at_cap = false;
    int64_t at = 0, t_held = hclock_now(&f->clk.base);
    struct limit_cfg lc = {.concurrency = 1};
    struct message_rec m;
    f->e.provs = defcache_new();
    console(f, "c1", "email", "{\"concurrency\":1}");
    send(f, "pc1", ONE_EMAIL);
    assert_int_equal(run_jobs(f), 1);
    assert_status(f, "pc1", "SENT");
    assert_string_equal(history(f, "pc1", h, sizeof h),
                        "ENQUEUED,PROFILE_LOADED,RENDERED,DELIVERING,SENT");

    /* routed to c1 at its cap (a deliver job waits); c1's record then changes in the
     * store behind the cache's back (only a test can, on SQLite): the delivery uses the
     * cached record routing chose it by, not a read of its own */
    assert_int_equal(limit_acquire(f->e.limits, "c1", &lc, t_held, &held, &at, &at_cap), 0);
    send(f, "pc0", ONE_EMAIL);
    run_jobs(f);
    assert_status(f, "pc0", "ROUTED");
    put_doc(f, "providers", "c1",
            "{\"id\":\"c1\",\"provider\":\"console\",\"channel\":\"email\","
            "\"enabled\":false,\"priority\":1,\"settings\":{},\"limits\":{\"concurrency\":1}}");
    limit_release(f->e.limits, "c1", t_held, hclock_now(&f->clk.base));
    hclock_manual_advance(&f->clk, DEFCACHE_TTL_MS - 1); /* the slot's time, not the TTL */
    run_jobs(f);
    assert_status(f, "pc0", "SENT");

    /* the same, but c1 is removed and the cache told (as the providers API does) */
    t_held = hclock_now(&f->clk.base);
    held = false;
    assert_int_equal(limit_acquire(f->e.limits, "c1", &lc, t_held, &held, &at, &at_cap), 0);
    send(f, "pc2", ONE_EMAIL);
    run_jobs(f);
    assert_status(f, "pc2", "ROUTED");
    herr_clear(&err);
    assert_int_equal(store_write(f->s, del_provider_tx, "c1", &err), HR_OK);
    defcache_changed(); /* as the providers API does */
    limit_release(f->e.limits, "c1", t_held, hclock_now(&f->clk.base));
    hclock_manual_advance(&f->clk, 60000);
    run_jobs(f);
    assert_status(f, "pc2", "UNDELIVERABLE");
    assert_int_equal(store_message_get(f->s, str_c("pc2"), f->a, &m), HR_OK);
    assert_non_null(strstr(m.error.p, "removed or disabled"));
    defcache_free(f->e.provs);
    f->e.provs = NULL;
}

/* Two channels (routing "all"): a send.deliver job each, as before. */
static void test_route_two_channels_hands_over(void **state)
{
    struct fx *f = *state;
    char h[256];
    console(f, "c1", "email", NULL);
    console(f, "c2", "sms", NULL);
    send(f, "m3",
         "{\"to\":{\"email\":\"a@example.com\",\"phone_number\":\"+15550100\"},"
         "\"content\":{\"title\":\"Hi\",\"body\":\"there\"},"
         "\"routing\":{\"method\":\"all\",\"channels\":[\"email\",\"sms\"]}}");
    assert_int_equal(run_jobs(f), 3); /* the route, then two deliveries */
    assert_status(f, "m3", "SENT");
    assert_string_equal(history(f, "m3", h, sizeof h),
                        "ENQUEUED,PROFILE_LOADED,RENDERED,RENDERED,DELIVERING,SENT,DELIVERING,"
                        "SENT");
}

/* A provider at its rate limit: the route job asked the limiter once, and the deliver
 * job it hands over runs at the token's time the limiter set aside (asking again at
 * once would have set aside a second one, a second later). */
static void test_route_at_rate_limit_waits_once(void **state)
{
    struct fx *f = *state;
    console(f, "c1", "email", "{\"per_second\":1}");
    send(f, "m5", ONE_EMAIL);
    send(f, "m6", ONE_EMAIL);
    run_jobs(f);
    assert_status(f, "m5", "SENT"); /* the bucket's one token */
    assert_status(f, "m6", "ROUTED");
    assert_int_equal(count_jobs(f, SEND_DELIVER_KIND), 1);
    hclock_manual_advance(&f->clk, 999);
    assert_int_equal(run_jobs(f), 0);
    hclock_manual_advance(&f->clk, 1);
    assert_int_equal(run_jobs(f), 1);
    assert_status(f, "m6", "SENT");
}

struct lease_arg {
    int64_t now;
    size_t n;
    struct arena *a;
};

static int lease_tx(struct store_txn *t, void *varg)
{
    struct lease_arg *l = varg;
    struct job *js = NULL;
    static const char *const kinds[] = {SEND_ROUTE_KIND, NULL};
    return store_job_lease(t, l->now, 1000, 16, 0, kinds, l->a, &js, &l->n);
}

static int lease_deliver_tx(struct store_txn *t, void *varg)
{
    struct lease_arg *l = varg;
    struct job *js = NULL;
    static const char *const kinds[] = {SEND_DELIVER_KIND, NULL};
    return store_job_lease(t, l->now, 1000, 16, 0, kinds, l->a, &js, &l->n);
}

/* delivering_lease_attempt: the lease count of id's one DELIVERING event (0: unmarked). */
static int64_t delivering_lease_attempt(struct fx *f, const char *id)
{
    struct history_rec *h = NULL;
    size_t n = 0;
    int64_t la = 0;
    assert_int_equal(store_history_list(f->s, str_c(id), str_c("DELIVERING"), f->a, &h, &n),
                     HR_OK);
    assert_int_equal(n, 1);
    cJSON *b = cJSON_ParseWithLength(h[0].body.p, h[0].body.len);
    if (!json_i64(b, "lease_attempt", &la) ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "retaken")))
        la = 0;
    cJSON_Delete(b);
    return la;
}

/* A route job taken over after its lease ran out (its node died, maybe mid-call): the
 * attempt it makes says so ("retaken", the lease count), on the fused path and when it
 * hands over to a deliver job (the provider at its cap). */
static void test_route_taken_over_marks_retaken(void **state)
{
    struct fx *f = *state;
    struct lease_arg l = {0, 0, f->a};
    struct history_rec *h = NULL;
    struct herr err;
    size_t n = 0;
    herr_clear(&err);
    console(f, "c1", "email", "{\"concurrency\":1}");
    send(f, "m7", ONE_EMAIL);
    send(f, "m8", ONE_EMAIL);
    l.now = hclock_now(&f->clk.base);
    assert_int_equal(store_write(f->s, lease_tx, &l, &err), HR_OK); /* a node that dies */
    assert_int_equal(l.n, 2);
    hclock_manual_advance(&f->clk, 1001);
    /* m7's route job calls; m8's finds the one slot taken (m7's, until its commit) and
     * hands over to a deliver job, which runs once the slot is free */
    assert_int_equal(run_jobs(f), 3);
    assert_status(f, "m7", "SENT");
    assert_status(f, "m8", "SENT");
    for (int k = 0; k < 2; k++) {
        const char *id = k ? "m8" : "m7";
        bool seen = false;
        assert_int_equal(store_history_list(f->s, str_c(id), str_c("DELIVERING"), f->a, &h, &n),
                         HR_OK);
        assert_int_equal(n, 1);
        cJSON *b = cJSON_ParseWithLength(h[0].body.p, h[0].body.len);
        int64_t la = 0;
        seen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "retaken")) &&
               json_i64(b, "lease_attempt", &la) && la == 2;
        if (!seen)
            fail_msg("%s: DELIVERING %.*s is not marked retaken with lease_attempt 2", id,
                     (int)h[0].body.len, h[0].body.p);
        cJSON_Delete(b);
    }
}

/* The sequence a CI run of crash.test.mjs met: a node dies mid-call in the route job
 * (call 1); the route job, taken over, finds the provider at its cap and hands over to a
 * deliver job; a node dies mid-call in that one too (call 2); its takeover makes call 3.
 * The DELIVERING event must count all three (the leases of both jobs), not the larger. */
static void test_handed_over_then_taken_over_counts_both_jobs(void **state)
{
    struct fx *f = *state;
    struct lease_arg l = {0, 0, f->a};
    struct limit_cfg lc = {.concurrency = 1};
    struct herr err;
    bool held = false, at_cap = false;
    int64_t at = 0, t_held;
    herr_clear(&err);
    console(f, "c1", "email", "{\"concurrency\":1}");
    send(f, "m10", ONE_EMAIL);
    l.now = hclock_now(&f->clk.base);
    assert_int_equal(store_write(f->s, lease_tx, &l, &err), HR_OK); /* dies mid-call */
    assert_int_equal(l.n, 1);
    hclock_manual_advance(&f->clk, 1001);
    t_held = hclock_now(&f->clk.base);
    assert_int_equal(limit_acquire(f->e.limits, "c1", &lc, t_held, &held, &at, &at_cap), 0);
    assert_true(held);
    run_jobs(f); /* the takeover: at the cap, hands over */
    assert_status(f, "m10", "ROUTED");
    assert_int_equal(count_jobs(f, SEND_DELIVER_KIND), 1);
    limit_release(f->e.limits, "c1", t_held, hclock_now(&f->clk.base));
    hclock_manual_advance(&f->clk, 60000);
    l.now = hclock_now(&f->clk.base);
    l.n = 0;
    assert_int_equal(store_write(f->s, lease_deliver_tx, &l, &err), HR_OK); /* dies too */
    assert_int_equal(l.n, 1);
    hclock_manual_advance(&f->clk, 1001);
    assert_int_equal(run_jobs(f), 1);
    assert_status(f, "m10", "SENT");
    assert_int_equal(delivering_lease_attempt(f, "m10"), 3);
}

/* The fused path writes the message row once (ENQUEUED to SENT), and nothing of what a
 * reader sees changes: the state names the provider that sent, sent is set, and the
 * status webhooks still get ENQUEUED, ROUTED and SENT, in that order. */
static void test_route_fused_sent_once_hooks_see_routed(void **state)
{
    struct fx *f = *state;
    struct message_rec m;
    struct job *js = NULL;
    size_t n = 0;
    const char *want[] = {"ENQUEUED", "ROUTED", "SENT"};
    cJSON *st, *cs;
    f->s->on_message = hooks_on_message;
    f->s->on_message_arg = &f->e;
    put_doc(f, HOOKS_COLL, HOOKS_DOC,
            "{\"endpoints\":[{\"id\":\"ep1\",\"url\":\"http://127.0.0.1:9/x\","
            "\"secret\":\"s\",\"enabled\":true}]}");
    hooks_changed();
    console(f, "c1", "email", NULL);
    send(f, "m9", ONE_EMAIL);
    hclock_manual_advance(&f->clk, 7);
    assert_int_equal(run_jobs(f), 1); /* hooks.deliver has no handler here: they wait */
    assert_int_equal(store_message_get(f->s, str_c("m9"), f->a, &m), HR_OK);
    assert_true(str_eq_c(m.status, "SENT"));
    assert_int_equal(m.sent_ms, T0 + 7);
    st = cJSON_ParseWithLength(m.state.p, m.state.len);
    cs = json_obj(json_obj(st, "channels"), "email");
    assert_non_null(cs);
    assert_string_equal(json_str(cs, "status"), "sent");
    assert_string_equal(json_str(cs, "provider"), "c1");
    assert_string_equal(json_str(cs, "provider_key"), "console");
    cJSON_Delete(st);
    assert_int_equal(store_job_list(f->s, JOB_QUEUED, 16, f->a, &js, &n), HR_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) { /* newest first */
        cJSON *p = cJSON_ParseWithLength(js[i].payload.p, js[i].payload.len);
        const char *got = json_str(json_obj(json_obj(p, "event"), "data"), "status");
        assert_string_equal(js[i].kind, HOOKS_JOB_KIND);
        if (!got || strcmp(got, want[n - 1 - i]) != 0)
            fail_msg("webhook job %zu: want status %s in %.*s", i, want[n - 1 - i],
                     (int)js[i].payload.len, js[i].payload.p);
        cJSON_Delete(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueued_history_data_from_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_delivers_one_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reroute_sent_at_once_drops_old_outputs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_route_at_cap_hands_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_two_channels_hands_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_provider_from_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_at_rate_limit_waits_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_taken_over_marks_retaken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_data_from_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handed_over_then_taken_over_counts_both_jobs,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_fused_sent_once_hooks_see_routed, setup,
                                        teardown),
    };
    log_set_level(getenv("TEST_LOG") ? LOG_DEBUG : LOG_OFF);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
