/* test_automation.c: automation_parse_duration (human text, ISO 8601, ms, limits),
 * automation_validate (each action's required fields, the step index in messages),
 * and runs driven by hand over a real SQLite store with a manual clock and
 * queue_run_once: a delay then update-profile, cancel by token, `if` skipping, once per
 * start/trigger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/engine/automation.h"
#include "../../../src/engine/fanout.h"
#include "../../../src/queue/queue.h"
#include "../../../src/store/store.h"
#include "../../../src/util/arena.h"
#include "../../../src/util/json.h"
#include "../../../src/util/log.h"
#include "../../../src/util/str.h"
#include "engine_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL
#define MIN 60000LL

/* ---- automation_parse_duration ---------------------------------------------------- */

static void dur_ok(const char *s, int64_t want)
{
    int64_t ms = -1;
    int rc = automation_parse_duration(s, &ms);
    if (rc != HR_OK || ms != want)
        fail_msg("parse_duration(\"%s\"): rc=%d ms=%lld, want %lld", s, rc, (long long)ms,
                 (long long)want);
}

static void dur_bad(const char *s)
{
    int64_t ms = 12345;
    int rc = automation_parse_duration(s, &ms);
    if (rc != HR_INVAL)
        fail_msg("parse_duration(\"%s\"): rc=%d ms=%lld, want HR_INVAL", s ? s : "(null)", rc,
                 (long long)ms);
}

static void test_duration_text(void **state)
{
    dur_ok("5 minutes", 5 * MIN);
    dur_ok("1 minute", MIN);
    dur_ok("1 hour", 60 * MIN);
    dur_ok("3 days", 3 * 24 * 60 * MIN);
    dur_ok("2 weeks", 14 * 24 * 60 * MIN);
    dur_ok("30s", 30000);
    dur_ok("30 seconds", 30000);
    dur_ok("2 hours 30 minutes", 150 * MIN);
    dur_ok("1 hour and 30 minutes", 90 * MIN);
    dur_ok("1 hour, 5 minutes", 65 * MIN);
    dur_ok("1.5 hours", 90 * MIN);
    dur_ok("  10 min", 10 * MIN);
    dur_ok("5m", 5 * MIN);
    dur_ok("2h", 120 * MIN);
    dur_ok("250ms", 250);
    dur_ok("1500", 1500); /* a bare number is milliseconds */
    dur_ok("0", 0);
    dur_ok("365 days", 365LL * 24 * 60 * MIN);
}

static void test_duration_iso(void **state)
{
    dur_ok("PT5M", 5 * MIN);
    dur_ok("PT30S", 30000);
    dur_ok("PT1H", 60 * MIN);
    dur_ok("P1D", 24 * 60 * MIN);
    dur_ok("P1DT2H", 26 * 60 * MIN);
    dur_ok("P1DT2H3M4S", ((26 * 60 + 3) * 60 + 4) * 1000LL);
    dur_ok("P2W", 14 * 24 * 60 * MIN);
    dur_ok("PT0.5S", 500);
    dur_ok("pt5m", 5 * MIN);
}

static void test_duration_rejects(void **state)
{
    dur_bad("soon");
    dur_bad("");
    dur_bad(NULL);
    dur_bad("   ");
    dur_bad("-5 minutes");
    dur_bad("5 minutes ago");
    dur_bad("5 fortnights");
    dur_bad("minutes");
    dur_bad("P");
    dur_bad("PT");
    dur_bad("P5X");
    dur_bad("PT-5M");
    dur_bad("400 days");     /* over a year */
    dur_bad("367 days");
    dur_bad("P400D");
    dur_bad("60 weeks");
    dur_bad("9999999999999999999999 ms");
    dur_bad("inf minutes");
}

/* NaN passes both "v < 0" and "total > limit" and must not reach the int64 cast */
static void test_duration_rejects_nan(void **state)
{
    dur_bad("nan seconds");
    dur_bad("PTnanS");
}

/* ---- automation_validate ---------------------------------------------------------- */

/* valid: def_json validates. */
static void valid(const char *def_json)
{
    cJSON *d = cJSON_Parse(def_json);
    struct herr err;
    int rc;
    assert_non_null(d);
    herr_clear(&err);
    rc = automation_validate(d, &err);
    cJSON_Delete(d);
    if (rc != HR_OK)
        fail_msg("validate(%s): rc=%d \"%s\", want OK", def_json, rc, err.msg);
}

/* invalid: def_json is refused with a message containing want. */
static void invalid(const char *def_json, const char *want)
{
    cJSON *d = cJSON_Parse(def_json);
    struct herr err;
    int rc;
    assert_non_null(d);
    herr_clear(&err);
    rc = automation_validate(d, &err);
    cJSON_Delete(d);
    if (rc != HR_INVAL)
        fail_msg("validate(%s): rc=%d, want HR_INVAL", def_json, rc);
    if (!strstr(err.msg, want))
        fail_msg("validate(%s): message \"%s\" lacks \"%s\"", def_json, err.msg, want);
}

#define OKSEND "{\"action\":\"send\",\"template\":\"t1\",\"recipient\":\"refs.data.userId\"}"

static void test_validate_valid(void **state)
{
    valid("{\"name\":\"n\",\"steps\":[" OKSEND "]}");
    valid("{\"steps\":[{\"action\":\"send\",\"message\":{\"to\":{\"email\":\"a@x\"},"
          "\"content\":{\"title\":\"t\",\"body\":\"b\"}}}]}");
    valid("{\"steps\":[{\"action\":\"send\",\"message\":{\"template\":\"t\"}}]}");
    valid("{\"steps\":[{\"action\":\"delay\",\"duration\":\"5 minutes\"}]}");
    valid("{\"steps\":[{\"action\":\"delay\",\"duration\":\"PT5M\"}]}");
    valid("{\"steps\":[{\"action\":\"delay\",\"duration\":60000}]}");
    valid("{\"steps\":[{\"action\":\"delay\",\"duration\":\"refs.data.wait\"}]}");
    valid("{\"steps\":[{\"action\":\"delay\",\"until\":\"20240408T080910.123\"}]}");
    valid("{\"steps\":[{\"action\":\"delay\",\"until\":\"2024-04-08T08:09:10Z\"}]}");
    valid("{\"steps\":[{\"action\":\"cancel\",\"cancelation_token\":\"tok\"}]}");
    valid("{\"steps\":[{\"action\":\"fetch-data\",\"webhook\":{\"url\":\"http://x/y\","
          "\"method\":\"POST\"},\"merge_strategy\":\"soft-merge\"}]}");
    valid("{\"steps\":[{\"action\":\"update-profile\",\"recipient_id\":\"u\",\"profile\":{\"a\":1},"
          "\"merge\":\"replace\"}]}");
    valid("{\"steps\":[{\"action\":\"get-profile\",\"user_id\":\"u\"}]}");
    valid("{\"steps\":[{\"action\":\"invoke\",\"template\":\"other\"}]}");
    valid("{\"cancelation_token\":\"refs.data.order_id\",\"steps\":[" OKSEND "]}");
    valid("{\"steps\":[{\"action\":\"send\",\"template\":\"t\",\"if\":\"data.vip === true\","
          "\"ref\":\"s1\"}]}");
}

/* `if` is an expression, not an accessor: "refs.step1.status === ..." is Courier's form
 * (the runtime evaluates it; only the save-time check must not read it as a path) */
static void test_validate_if_with_refs(void **state)
{
    /* the condition of a step may read a step ref with the documented refs. prefix */
    valid("{\"steps\":[" OKSEND ",{\"action\":\"send\",\"template\":\"t\","
          "\"if\":\"refs.s1.status === \\\"ENQUEUED\\\"\"}]}");
    valid("{\"steps\":[{\"action\":\"send\",\"template\":\"t\",\"if\":\"refs.data.vip\"}]}");
}

static void test_validate_required_fields(void **state)
{
    invalid("{\"steps\":[{\"action\":\"send\"}]}", "steps[0]");
    invalid("{\"steps\":[{\"action\":\"send\",\"message\":{\"to\":{\"email\":\"a@x\"}}}]}",
            "steps[0]");
    invalid("{\"steps\":[{\"action\":\"delay\"}]}", "steps[0]");
    invalid("{\"steps\":[{\"action\":\"delay\",\"duration\":\"soon\"}]}", "steps[0].duration");
    invalid("{\"steps\":[{\"action\":\"delay\",\"until\":\"tomorrow\"}]}", "steps[0].until");
    invalid("{\"steps\":[{\"action\":\"cancel\"}]}", "steps[0]");
    invalid("{\"steps\":[{\"action\":\"fetch-data\"}]}", "steps[0]");
    invalid("{\"steps\":[{\"action\":\"fetch-data\",\"webhook\":{\"method\":\"GET\"}}]}", "steps[0]");
    invalid("{\"steps\":[{\"action\":\"fetch-data\",\"webhook\":{\"url\":\"http://x\","
            "\"method\":\"BREW\"}}]}",
            "steps[0].webhook.method");
    invalid("{\"steps\":[{\"action\":\"fetch-data\",\"webhook\":{\"url\":\"http://x\"},"
            "\"merge_strategy\":\"smash\"}]}",
            "steps[0].merge_strategy");
    invalid("{\"steps\":[{\"action\":\"update-profile\",\"recipient_id\":\"u\"}]}", "steps[0]");
    invalid("{\"steps\":[{\"action\":\"update-profile\",\"profile\":{},\"merge\":\"all\"}]}",
            "steps[0].merge");
    invalid("{\"steps\":[{\"action\":\"get-profile\",\"merge_strategy\":1}]}",
            "steps[0].merge_strategy");
    invalid("{\"steps\":[{\"action\":\"invoke\"}]}", "steps[0]");
}

/* the step types come from one table: validation names every one of them in order, and
 * the table's prepare hooks (invoke, fetch-data) still check what accessors resolved to */
static void test_step_types_table(void **state)
{
    cJSON *raw, *ctx, *out = NULL;
    struct herr err;
    bool skipped;
    invalid("{\"steps\":[{\"action\":\"explode\"}]}",
            "steps[0].action must be one of send, send-list, delay, cancel, fetch-data, update-profile, "
            "get-profile, invoke");
    invalid("{\"steps\":[{\"if\":\"data.a\"}]}", "steps[0].action must be one of");
    ctx = cJSON_Parse("{\"data\":{\"t\":\"bad id!\",\"u\":\"ftp://x\"}}");
    raw = cJSON_Parse("{\"action\":\"invoke\",\"template\":\"refs.data.t\"}");
    herr_clear(&err);
    assert_int_equal(automation_step_prepare(raw, ctx, &out, &skipped, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "invoke: template must resolve to an automation id"));
    assert_null(out);
    cJSON_Delete(raw);
    raw = cJSON_Parse("{\"action\":\"fetch-data\",\"webhook\":{\"url\":\"refs.data.u\"}}");
    herr_clear(&err);
    assert_int_equal(automation_step_prepare(raw, ctx, &out, &skipped, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "fetch-data: webhook.url must be an http(s) URL"));
    cJSON_Delete(raw);
    raw = cJSON_Parse("{\"action\":\"delay\",\"duration\":\"refs.data.t\"}");
    herr_clear(&err);
    assert_int_equal(automation_step_prepare(raw, ctx, &out, &skipped, &err), HR_OK);
    assert_false(skipped);
    assert_string_equal(cJSON_GetObjectItem(out, "duration")->valuestring, "bad id!");
    cJSON_Delete(out);
    cJSON_Delete(raw);
    cJSON_Delete(ctx);
}

static void test_validate_index_and_shape(void **state)
{
    char big[16384];
    size_t n = 0;
    invalid("{\"steps\":[" OKSEND ",{\"action\":\"explode\"}]}", "steps[1]");
    invalid("{\"steps\":[" OKSEND "," OKSEND "," OKSEND ",{\"action\":\"delay\",\"duration\":\"-1 "
            "minutes\"}]}",
            "steps[3]");
    invalid("{\"steps\":[" OKSEND ",{}]}", "steps[1]");
    invalid("{\"steps\":[" OKSEND ",42]}", "steps[1]");
    invalid("{\"steps\":[" OKSEND ",{\"action\":\"send\",\"template\":\"t\",\"if\":\"data.a === (\"}]}",
            "steps[1].if");
    invalid("{\"steps\":[{\"action\":\"send\",\"template\":\"t\",\"if\":true}]}", "steps[0].if");
    invalid("{\"steps\":[{\"action\":\"send\",\"template\":\"t\",\"ref\":\"\"}]}", "steps[0].ref");
    invalid("{\"steps\":[{\"action\":\"send\",\"template\":\"t\",\"data\":{\"x\":\"${data.\"}}]}",
            "steps[0]");
    invalid("{\"steps\":[]}", "steps");
    invalid("{\"name\":\"x\"}", "steps");
    invalid("{\"steps\":{}}", "steps");
    invalid("{\"name\":5,\"steps\":[" OKSEND "]}", "name");
    invalid("{\"cancelation_token\":5,\"steps\":[" OKSEND "]}", "cancelation_token");
    /* more than AUTOMATION_MAX_STEPS */
    n += (size_t)snprintf(big + n, sizeof big - n, "{\"steps\":[");
    for (int i = 0; i <= AUTOMATION_MAX_STEPS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s{\"action\":\"invoke\",\"template\":\"a\"}",
                              i ? "," : "");
    snprintf(big + n, sizeof big - n, "]}");
    invalid(big, "steps");
}

/* ---- runs over a real store ------------------------------------------------------- */

struct fx {
    char dir[64];
    char path[128];
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
    struct job_handler hs[1];
    char dsn[160];
    struct herr err;
    herr_clear(&err);
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-tauto-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/a.db", f->dir);
    snprintf(dsn, sizeof dsn, "sqlite:%s", f->path);
    hclock_manual_init(&f->clk, T0);
    if (store_open(dsn, &f->clk.base, &f->s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    f->e.store = f->s;
    f->e.clock = &f->clk.base;
    f->e.message_timeout_ms = SEND_TIMEOUT_DEFAULT_MS;
    f->e.provider_timeout_ms = 10000;
    f->e.backoff_base_ms = 1000;
    f->e.backoff_max_ms = 3600000;
    hs[0].kind = AUTOMATION_STEP_KIND;
    hs[0].run = automation_step_run;
    hs[0].ctx = &f->e;
    queue_cfg_defaults(&cfg);
    f->q = queue_new(f->s, &f->clk.base, &cfg, hs, 1);
    f->a = arena_new(4096);
    *state = f;
    return f->q ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];
    queue_free(f->q);
    store_close(f->s);
    arena_free(f->a);
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static size_t run_jobs(struct fx *f) { return fx_run_jobs(f->q); }

/* doc: the document coll/id parsed (caller owns), or NULL when absent. */
static cJSON *doc(struct fx *f, const char *coll, const char *id)
{
    struct doc_rec d;
    int rc = store_doc_get(f->s, coll, str_c(id), f->a, &d);
    if (rc == HR_NOTFOUND)
        return NULL;
    assert_int_equal(rc, HR_OK);
    return cJSON_ParseWithLength(d.body.p, d.body.len);
}

static void assert_run_status(struct fx *f, const char *run_id, const char *want)
{
    cJSON *r = doc(f, "runs", run_id);
    assert_non_null(r);
    if (!json_str(r, "status") || strcmp(json_str(r, "status"), want)) {
        char *s = json_print(r);
        cJSON_Delete(r);
        fail_msg("run %s: want status %s, got %s", run_id, want, s);
    }
    cJSON_Delete(r);
}

/* result_status: the status of step i's (last) result in the run, or NULL. Copied into
 * buf. */
static const char *result_status(struct fx *f, const char *run_id, int i, char *buf, size_t cap)
{
    cJSON *r = doc(f, "runs", run_id), *it;
    const char *st = NULL;
    assert_non_null(r);
    cJSON_ArrayForEach(it, json_arr(r, "results"))
    {
        int64_t idx = -1;
        if (json_i64(it, "index", &idx) && idx == i)
            st = json_str(it, "status");
    }
    if (st)
        snprintf(buf, cap, "%s", st);
    cJSON_Delete(r);
    return st ? buf : NULL;
}

struct start_arg {
    struct engine *e;
    cJSON *def, *ctx;
    const char *run_id;
    const char *automation_id;
    int64_t version;
};

static int start_tx(struct store_txn *t, void *varg)
{
    struct start_arg *s = varg;
    return automation_start(s->e, t, s->def, s->automation_id, s->version, s->ctx, s->run_id,
                            NULL, 0);
}

/* start: automation_start(def_json, ctx_json) as run run_id; returns the rc. */
static int start(struct fx *f, const char *run_id, const char *def_json, const char *ctx_json)
{
    struct start_arg s = {&f->e, cJSON_Parse(def_json), cJSON_Parse(ctx_json), run_id, NULL, 0};
    struct herr err;
    int rc;
    assert_non_null(s.def);
    assert_non_null(s.ctx);
    herr_clear(&err);
    rc = store_write(f->s, start_tx, &s, &err);
    cJSON_Delete(s.def);
    cJSON_Delete(s.ctx);
    return rc;
}

static void put_doc(struct fx *f, const char *coll, const char *id, const char *body)
{
    fx_put_doc(f->s, hclock_now(&f->clk.base), coll, id, body);
}

static void assert_profile(struct fx *f, const char *id, const char *want_json)
{
    cJSON *p = doc(f, "profiles", id), *want = want_json ? cJSON_Parse(want_json) : NULL;
    bool same = (p == NULL && want == NULL) || (p && want && cJSON_Compare(p, want, true));
    if (!same) {
        char *got = p ? json_print(p) : strdup("(none)");
        cJSON_Delete(p);
        cJSON_Delete(want);
        fail_msg("profile %s: want %s, got %s", id, want_json ? want_json : "(none)", got);
    }
    cJSON_Delete(p);
    cJSON_Delete(want);
}

#define DELAY_THEN_PROFILE(uid, plan)                                                              \
    "{\"steps\":[{\"action\":\"delay\",\"duration\":\"10 minutes\"},"                              \
    "{\"action\":\"update-profile\",\"recipient_id\":\"" uid "\",\"profile\":{\"plan\":\"" plan    \
    "\"}}]}"

static void test_run_delay_then_update_profile(void **state)
{
    struct fx *f = *state;
    cJSON *r;
    int64_t until = 0, cur = -1;
    char b[32];
    put_doc(f, "profiles", "u1", "{\"email\":\"u1@x.test\",\"plan\":\"free\"}");
    assert_int_equal(start(f, "run-1", DELAY_THEN_PROFILE("u1", "pro"), "{\"data\":{\"a\":1}}"),
                     HR_OK);
    /* a pure first step (the delay) is taken by the start itself: no job of its own */
    assert_run_status(f, "run-1", "WAITING");
    assert_int_equal(run_jobs(f), 0);
    r = doc(f, "runs", "run-1");
    assert_true(json_i64(r, "waiting_until", &until));
    assert_true(json_i64(r, "current", &cur));
    cJSON_Delete(r);
    assert_int_equal(until, T0 + 10 * MIN);
    assert_int_equal(cur, 1);
    assert_string_equal(result_status(f, "run-1", 0, b, sizeof b), "done");

    /* not yet due */
    hclock_manual_advance(&f->clk, 10 * MIN - 1);
    assert_int_equal(run_jobs(f), 0);
    assert_run_status(f, "run-1", "WAITING");
    assert_profile(f, "u1", "{\"email\":\"u1@x.test\",\"plan\":\"free\"}");

    /* due: the update-profile step runs (default merge: overwrite, other keys kept) */
    hclock_manual_advance(&f->clk, 1);
    assert_int_equal(run_jobs(f), 1);
    assert_run_status(f, "run-1", "COMPLETED");
    assert_string_equal(result_status(f, "run-1", 1, b, sizeof b), "done");
    assert_profile(f, "u1", "{\"email\":\"u1@x.test\",\"plan\":\"pro\"}");
    assert_int_equal(run_jobs(f), 0);

    /* the run id is taken: a second start is a conflict and changes nothing */
    assert_int_equal(start(f, "run-1", DELAY_THEN_PROFILE("u1", "x"), "{}"), HR_CONFLICT);
    assert_run_status(f, "run-1", "COMPLETED");
    assert_int_equal(run_jobs(f), 0);
}

static void test_run_cancel_by_token(void **state)
{
    struct fx *f = *state;
    char b[32];
    /* A and B wait with different tokens (A's resolved from the context, B's literal) */
    assert_int_equal(start(f, "run-a",
                           "{\"cancelation_token\":\"refs.data.order\",\"steps\":["
                           "{\"action\":\"delay\",\"duration\":\"10 minutes\"},"
                           "{\"action\":\"update-profile\",\"recipient_id\":\"ua\","
                           "\"profile\":{\"done\":true}}]}",
                           "{\"data\":{\"order\":\"ord-1\"}}"),
                     HR_OK);
    assert_int_equal(start(f, "run-b",
                           "{\"cancelation_token\":\"ord-2\",\"steps\":["
                           "{\"action\":\"delay\",\"duration\":\"10 minutes\"},"
                           "{\"action\":\"update-profile\",\"recipient_id\":\"ub\","
                           "\"profile\":{\"done\":true}}]}",
                           "{\"data\":{\"order\":\"ord-2\"}}"),
                     HR_OK);
    assert_int_equal(run_jobs(f), 0); /* the delays were taken by the starts */
    assert_run_status(f, "run-a", "WAITING");
    assert_run_status(f, "run-b", "WAITING");

    /* a cancel step with A's token, resolved from its own context */
    hclock_manual_advance(&f->clk, MIN);
    assert_int_equal(start(f, "run-c",
                           "{\"steps\":[{\"action\":\"cancel\",\"cancelation_token\":"
                           "\"refs.data.which\"}]}",
                           "{\"data\":{\"which\":\"ord-1\"}}"),
                     HR_OK);
    assert_int_equal(run_jobs(f), 1);
    assert_run_status(f, "run-c", "COMPLETED");
    assert_string_equal(result_status(f, "run-c", 0, b, sizeof b), "done");
    assert_run_status(f, "run-a", "CANCELED");
    assert_run_status(f, "run-b", "WAITING");

    /* past the due time: B finishes, A does nothing */
    hclock_manual_advance(&f->clk, 10 * MIN);
    run_jobs(f);
    assert_run_status(f, "run-a", "CANCELED");
    assert_null(result_status(f, "run-a", 1, b, sizeof b));
    assert_profile(f, "ua", NULL);
    assert_run_status(f, "run-b", "COMPLETED");
    assert_profile(f, "ub", "{\"done\":true}");

    /* cancelling a finished run changes nothing */
    assert_int_equal(start(f, "run-d",
                           "{\"steps\":[{\"action\":\"cancel\",\"cancelation_token\":\"ord-2\"}]}",
                           "{}"),
                     HR_OK);
    run_jobs(f);
    assert_run_status(f, "run-d", "COMPLETED");
    assert_run_status(f, "run-b", "COMPLETED");
}

static void test_run_if(void **state)
{
    struct fx *f = *state;
    char b[32];
    struct message_filter mf = {.run_id = str_c("run-if"), .limit = 10};
    struct message_rec *ms = NULL;
    size_t nm = 99;
    assert_int_equal(
        start(f, "run-if",
              "{\"steps\":["
              "{\"action\":\"update-profile\",\"recipient_id\":\"u-skip\",\"profile\":{\"x\":1},"
              "\"if\":\"data.go === true\"},"
              "{\"action\":\"send\",\"template\":\"t\",\"recipient\":\"u\",\"if\":\"data.go\"},"
              "{\"action\":\"update-profile\",\"recipient_id\":\"u-run\",\"profile\":{\"y\":2},"
              "\"if\":\"data.go === false && data.n > 2\",\"ref\":\"up\"},"
              "{\"action\":\"update-profile\",\"recipient_id\":\"u-ref\",\"profile\":{\"z\":3},"
              "\"if\":\"refs.up.status === 'done'\"},"
              "{\"action\":\"update-profile\",\"recipient_id\":\"u-ref2\",\"profile\":{\"z\":4},"
              "\"if\":\"up.status !== 'done'\"}]}",
              "{\"data\":{\"go\":false,\"n\":3}}"),
        HR_OK);
    assert_int_equal(run_jobs(f), 5);
    assert_run_status(f, "run-if", "COMPLETED");
    assert_string_equal(result_status(f, "run-if", 0, b, sizeof b), "skipped");
    assert_string_equal(result_status(f, "run-if", 1, b, sizeof b), "skipped");
    assert_string_equal(result_status(f, "run-if", 2, b, sizeof b), "done");
    assert_string_equal(result_status(f, "run-if", 3, b, sizeof b), "done");
    assert_string_equal(result_status(f, "run-if", 4, b, sizeof b), "skipped");
    assert_profile(f, "u-skip", NULL);
    assert_profile(f, "u-run", "{\"y\":2}");
    assert_profile(f, "u-ref", "{\"z\":3}");
    assert_profile(f, "u-ref2", NULL);
    /* the skipped send made no message */
    assert_int_equal(store_message_list(f->s, &mf, f->a, &ms, &nm), HR_OK);
    assert_int_equal(nm, 0);
}

/* A run whose first step is a send is complete when its start commits: the message is
 * enqueued in the same transaction (no step job, no second run write); a first step
 * that is not pure (update-profile reads the store) still waits for its job. */
static void test_run_first_send_taken_at_start(void **state)
{
    struct fx *f = *state;
    char b[32];
    struct message_filter mf = {.run_id = str_c("run-s"), .limit = 10};
    struct message_rec *ms = NULL;
    size_t nm = 0;
    cJSON *r;
    assert_int_equal(start(f, "run-s",
                           "{\"steps\":[{\"action\":\"send\",\"template\":\"t1\","
                           "\"recipient\":\"refs.data.userId\",\"ref\":\"s\"}]}",
                           "{\"data\":{\"userId\":\"u9\"}}"),
                     HR_OK);
    assert_run_status(f, "run-s", "COMPLETED");
    assert_string_equal(result_status(f, "run-s", 0, b, sizeof b), "done");
    assert_int_equal(run_jobs(f), 0); /* no step job was queued */
    assert_int_equal(store_message_list(f->s, &mf, f->a, &ms, &nm), HR_OK);
    assert_int_equal(nm, 1);
    assert_string_equal(ms[0].status.p, "ENQUEUED");
    assert_string_equal(ms[0].recipient.p, "u9");
    r = doc(f, "runs", "run-s"); /* refs.s holds the outcome, as a job would have left it */
    assert_string_equal(json_str(json_obj(json_obj(json_obj(r, "context"), "refs"), "s"),
                                 "messageId"),
                        ms[0].id.p);
    cJSON_Delete(r);
    /* the start again (a replayed event): a conflict, still one message */
    assert_int_equal(start(f, "run-s", "{\"steps\":[{\"action\":\"delay\",\"duration\":1}]}",
                           "{}"),
                     HR_CONFLICT);
    assert_int_equal(store_message_list(f->s, &mf, f->a, &ms, &nm), HR_OK);
    assert_int_equal(nm, 1);

    assert_int_equal(start(f, "run-p",
                           "{\"steps\":[{\"action\":\"update-profile\",\"recipient_id\":\"up\","
                           "\"profile\":{\"x\":1}}]}",
                           "{}"),
                     HR_OK);
    assert_run_status(f, "run-p", "RUNNING");
    assert_profile(f, "up", NULL);
    assert_int_equal(run_jobs(f), 1);
    assert_run_status(f, "run-p", "COMPLETED");
    assert_profile(f, "up", "{\"x\":1}");
}

static int64_t count_jobs(struct fx *f, const char *kind)
{
    return fx_count_jobs(f->s, f->a, kind);
}

/* A first send-list step is taken at the start too: the fan-out (its document and its
 * first page's job) exists when the start commits, and no step job was queued. */
static void test_run_first_send_list_taken_at_start(void **state)
{
    struct fx *f = *state;
    char b[32];
    cJSON *r, *fo;
    const char *rid;
    assert_int_equal(start(f, "run-l",
                           "{\"steps\":[{\"action\":\"send-list\",\"list\":\"team.a\","
                           "\"template\":\"t1\",\"ref\":\"l\"}]}",
                           "{\"data\":{\"k\":1}}"),
                     HR_OK);
    assert_run_status(f, "run-l", "COMPLETED");
    assert_string_equal(result_status(f, "run-l", 0, b, sizeof b), "done");
    assert_int_equal(count_jobs(f, AUTOMATION_STEP_KIND), 0);
    assert_int_equal(count_jobs(f, SEND_FANOUT_KIND), 1);
    r = doc(f, "runs", "run-l");
    rid = json_str(json_obj(json_obj(json_obj(r, "context"), "refs"), "l"), "requestId");
    assert_non_null(rid);
    fo = doc(f, "fanouts", rid); /* fanout_int.h: FANOUT_COLL */
    assert_non_null(fo);
    assert_string_equal(json_str(fo, "run_id"), "run-l");
    assert_string_equal(json_str(fo, "target"), "team.a");
    cJSON_Delete(fo);
    cJSON_Delete(r);
}

struct trig_arg {
    struct fx *f;
    cJSON *data;
    int64_t event_id;
    int setup;
};

static int trig_tx(struct store_txn *t, void *varg)
{
    struct trig_arg *a = varg;
    int64_t v = 0;
    int rc;
    if (a->setup) {
        cJSON *def = cJSON_Parse(DELAY_THEN_PROFILE("refs.data.userId", "linked"));
        rc = automation_put(t, str_c("auto-1"), def, hclock_now(&a->f->clk.base), &v);
        cJSON_Delete(def);
        if (rc == HR_OK)
            rc = automation_link(t, str_c("track/Paid"), str_c("auto-1"),
                                 hclock_now(&a->f->clk.base));
        return rc;
    }
    return automation_trigger(&a->f->e, t, a->data, "track/Paid", a->event_id,
                              hclock_now(&a->f->clk.base));
}

static size_t count_runs(struct fx *f)
{
    struct doc_rec *docs = NULL;
    size_t n = 0;
    assert_int_equal(store_doc_list(f->s, "runs", STR_NULL, STR_NULL, 100, f->a, &docs, &n), 0);
    return n;
}

static void test_trigger_once_per_event(void **state)
{
    struct fx *f = *state;
    struct trig_arg a = {f, cJSON_Parse("{\"userId\":\"tu\",\"type\":\"track\"}"), 7, 1};
    struct herr err;
    struct doc_rec *docs = NULL;
    size_t n = 0;
    cJSON *run;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, trig_tx, &a, &err), HR_OK);
    a.setup = 0;
    assert_int_equal(store_write(f->s, trig_tx, &a, &err), HR_OK);
    assert_int_equal(count_runs(f), 1);
    assert_int_equal(store_write(f->s, trig_tx, &a, &err), HR_OK); /* the same event again */
    assert_int_equal(count_runs(f), 1);
    a.event_id = 8;
    assert_int_equal(store_write(f->s, trig_tx, &a, &err), HR_OK);
    assert_int_equal(count_runs(f), 2);
    cJSON_Delete(a.data);

    assert_int_equal(store_doc_list(f->s, "runs", STR_NULL, STR_NULL, 100, f->a, &docs, &n), 0);
    run = cJSON_ParseWithLength(docs[0].body.p, docs[0].body.len);
    assert_string_equal(json_str(run, "automation_id"), "auto-1");
    assert_string_equal(json_str(json_obj(run, "context"), "recipient"), "tu");
    cJSON_Delete(run);
    run_jobs(f);
    hclock_manual_advance(&f->clk, 10 * MIN);
    run_jobs(f);
    assert_profile(f, "tu", "{\"plan\":\"linked\"}");
}

static int data_new_calls;

static cJSON *counting_data_new(const cJSON *event)
{
    data_new_calls++;
    return cJSON_Duplicate(event, 1);
}

struct lazy_arg {
    struct fx *f;
    const cJSON *event;
    const char *name;
};

static int lazy_tx(struct store_txn *t, void *varg)
{
    struct lazy_arg *a = varg;
    return automation_trigger_event(&a->f->e, t, a->event, false, counting_data_new, a->name,
                                    9, hclock_now(&a->f->clk.base));
}

/* The ingest hook builds an event's run data only when something is linked to it. */
static void test_trigger_event_builds_data_only_when_linked(void **state)
{
    struct fx *f = *state;
    cJSON *ev = cJSON_Parse("{\"userId\":\"lu\",\"type\":\"track\"}");
    struct trig_arg setup = {f, NULL, 0, 1};
    struct lazy_arg a = {f, ev, "track/Unlinked"};
    struct herr err;
    herr_clear(&err);
    data_new_calls = 0;
    assert_int_equal(store_write(f->s, lazy_tx, &a, &err), HR_OK);
    assert_int_equal(data_new_calls, 0);
    assert_int_equal(count_runs(f), 0);
    assert_int_equal(store_write(f->s, trig_tx, &setup, &err), HR_OK); /* links track/Paid */
    a.name = "track/Paid";
    assert_int_equal(store_write(f->s, lazy_tx, &a, &err), HR_OK);
    assert_int_equal(data_new_calls, 1);
    assert_int_equal(count_runs(f), 1);
    cJSON_Delete(ev);
}

struct evrun_arg {
    struct fx *f;
    const char *body;
    bool stored;
    int64_t event_id;
};

/* evrun_tx: store body as an event and trigger track/Ev with it */
static int evrun_tx(struct store_txn *t, void *varg)
{
    struct evrun_arg *a = varg;
    int64_t now = hclock_now(&a->f->clk.base);
    struct event_rec rec = {.source_id = 1, .message_id = str_c(a->stored ? "e-s" : "e-c"),
                            .type = str_c("track"), .user_id = str_c("ru"),
                            .body = str_c(a->body), .received_ms = now};
    cJSON *ev = cJSON_Parse(a->body);
    int rc = store_event_insert(t, &rec, 0, &a->event_id);
    if (rc == HR_OK)
        rc = automation_trigger_event(&a->f->e, t, ev, a->stored, fx_event_data_tagged,
                                      "track/Ev", a->event_id, now);
    cJSON_Delete(ev);
    return rc;
}

/* evdef_tx: automation auto-ev (send t1, delay, send t2, send t3 with data of its own),
 * linked to track/Ev */
static int evdef_tx(struct store_txn *t, void *varg)
{
    struct fx *f = varg;
    int64_t now = hclock_now(&f->clk.base), v = 0;
    cJSON *def = cJSON_Parse(
        "{\"steps\":[{\"action\":\"send\",\"template\":\"t1\",\"recipient\":"
        "\"refs.data.userId\"},{\"action\":\"delay\",\"duration\":\"1 minute\"},"
        "{\"action\":\"send\",\"template\":\"t2\",\"recipient\":\"refs.data.userId\"},"
        "{\"action\":\"send\",\"template\":\"t3\",\"recipient\":\"refs.data.userId\","
        "\"data\":{\"y\":2}}]}");
    int rc = automation_put(t, str_c("auto-ev"), def, now, &v);
    cJSON_Delete(def);
    if (rc == HR_OK)
        rc = automation_link(t, str_c("track/Ev"), str_c("auto-ev"), now);
    return rc;
}

/* run_of: the id of automation auto-ev's run for event_id (into buf) */
static const char *run_of(struct fx *f, int64_t event_id, char *buf, size_t cap)
{
    struct doc_rec *docs = NULL;
    size_t n = 0;
    assert_int_equal(store_doc_list(f->s, "runs", STR_NULL, STR_NULL, 100, f->a, &docs, &n), 0);
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
        int64_t ev = 0;
        if (json_i64(json_obj(r, "source"), "event_id", &ev) && ev == event_id) {
            snprintf(buf, cap, "%s", json_str(r, "id"));
            cJSON_Delete(r);
            return buf;
        }
        cJSON_Delete(r);
    }
    fail_msg("no run for event %lld", (long long)event_id);
    return NULL;
}

/* spec_of: the stored spec of run_id's message of template tmpl (parsed, caller owns) */
static cJSON *spec_of(struct fx *f, const char *run_id, const char *tmpl)
{
    struct message_filter mf = {.run_id = str_c(run_id), .limit = 10};
    struct message_rec *ms = NULL;
    size_t nm = 0;
    assert_int_equal(store_message_list(f->s, &mf, f->a, &ms, &nm), HR_OK);
    for (size_t i = 0; i < nm; i++)
        if (str_eq_c(ms[i].notification, tmpl))
            return cJSON_ParseWithLength(ms[i].spec.p, ms[i].spec.len);
    fail_msg("run %s has no message of %s", run_id, tmpl);
    return NULL;
}

/* A run started by a stored event keeps a reference to the event, not a copy of its
 * data, and so do its send steps' messages that add no data of their own; loads derive
 * the data again. A step's own data, a client key's altered event (not stored as it
 * is) and an engine without event_data keep copies. */
static void test_run_data_from_event(void **state)
{
    struct fx *f = *state;
    const char *body = "{\"type\":\"track\",\"userId\":\"ru\",\"order\":\"o-1\"}";
    struct evrun_arg a = {f, body, true, 0};
    struct herr err;
    char rid[64];
    int64_t ev = 0;
    cJSON *raw, *run, *spec, *want, *parsed = cJSON_Parse(body);
    herr_clear(&err);
    f->e.event_data = fx_event_data_tagged;
    /* the run context at the trigger is a view of the event (gone after the call: ASan
     * would see anything that kept it); everything below reads as with a copy */
    f->e.event_data_view = fx_event_data_tagged_view;
    assert_int_equal(store_write(f->s, evdef_tx, f, &err), HR_OK);
    assert_int_equal(store_write(f->s, evrun_tx, &a, &err), HR_OK);
    run_of(f, a.event_id, rid, sizeof rid);
    raw = doc(f, "runs", rid); /* stored: the reference, no data */
    assert_true(json_i64(raw, SPEC_DATA_EVENT, &ev));
    assert_int_equal(ev, a.event_id);
    assert_null(cJSON_GetObjectItemCaseSensitive(json_obj(raw, "context"), "data"));
    assert_string_equal(json_str(raw, "status"), "RUNNING"); /* the delay is a job */
    cJSON_Delete(raw);
    assert_int_equal(automation_run_get(&f->e, str_c(rid), &run), HR_OK); /* derived */
    want = fx_event_data_tagged(parsed);
    cJSON_Delete(parsed);
    assert_true(cJSON_Compare(json_obj(json_obj(run, "context"), "data"), want, true));
    cJSON_Delete(run);
    spec = spec_of(f, rid, "t1");
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, "data"));
    assert_true(json_i64(spec, SPEC_DATA_EVENT, &ev) && ev == a.event_id);
    cJSON_Delete(spec);

    /* after the delay: the step jobs load the run (data derived) and send again */
    assert_int_equal(run_jobs(f), 1);
    assert_run_status(f, rid, "WAITING");
    hclock_manual_advance(&f->clk, MIN);
    assert_int_equal(run_jobs(f), 2);
    assert_run_status(f, rid, "COMPLETED");
    spec = spec_of(f, rid, "t2"); /* no data of its own: a reference again */
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, "data"));
    assert_true(json_i64(spec, SPEC_DATA_EVENT, &ev) && ev == a.event_id);
    cJSON_Delete(spec);
    spec = spec_of(f, rid, "t3"); /* its own data on top of the run's: a copy */
    assert_null(cJSON_GetObjectItemCaseSensitive(spec, SPEC_DATA_EVENT));
    assert_int_equal(json_obj(spec, "data") ? cJSON_GetArraySize(json_obj(spec, "data")) : 0,
                     cJSON_GetArraySize(want) + 1);
    assert_string_equal(json_str(json_obj(spec, "data"), "derived"), "yes");
    cJSON_Delete(spec);
    raw = doc(f, "runs", rid); /* still stored without its data */
    assert_null(cJSON_GetObjectItemCaseSensitive(json_obj(raw, "context"), "data"));
    cJSON_Delete(raw);

    /* an event that is not stored as it is: copies */
    a.stored = false;
    assert_int_equal(store_write(f->s, evrun_tx, &a, &err), HR_OK);
    run_of(f, a.event_id, rid, sizeof rid);
    raw = doc(f, "runs", rid);
    assert_null(cJSON_GetObjectItemCaseSensitive(raw, SPEC_DATA_EVENT));
    assert_true(cJSON_Compare(json_obj(json_obj(raw, "context"), "data"), want, true));
    cJSON_Delete(raw);
    spec = spec_of(f, rid, "t1");
    assert_true(cJSON_Compare(json_obj(spec, "data"), want, true));
    cJSON_Delete(spec);
    cJSON_Delete(want);
    f->e.event_data = NULL;
    f->e.event_data_view = NULL;
}

/* start_for: start def as run run_id of automation aid (NULL: ad hoc). */
static void start_for(struct fx *f, const char *run_id, const char *aid)
{
    struct start_arg s = {&f->e, cJSON_Parse("{\"steps\":[{\"action\":\"delay\",\"duration\":\"1 day\"}]}"),
                          cJSON_Parse("{}"), run_id, aid, 1};
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, start_tx, &s, &err), HR_OK);
    cJSON_Delete(s.def);
    cJSON_Delete(s.ctx);
}

/* assert_recent: automation_runs_recent(aid, limit) is exactly want (comma-separated). */
static void assert_recent(struct fx *f, const char *aid, size_t limit, const char *want)
{
    cJSON *ids = NULL, *it;
    char got[256] = "";
    assert_int_equal(automation_runs_recent(f->s, str_c(aid), limit, &ids), HR_OK);
    cJSON_ArrayForEach(it, ids)
    {
        if (got[0])
            strcat(got, ",");
        strcat(got, it->valuestring);
    }
    cJSON_Delete(ids);
    assert_string_equal(got, want);
}

static void test_runs_recent(void **state)
{
    struct fx *f = *state;
    start_for(f, "r1", "a1");
    hclock_manual_advance(&f->clk, 1000);
    start_for(f, "r0", "a1"); /* ids do not order runs: times do */
    hclock_manual_advance(&f->clk, 1000);
    start_for(f, "r9", "a1");
    start_for(f, "r4", "a10"); /* a longer id sharing the prefix is another automation */
    start_for(f, "r5", NULL);  /* ad hoc steps are not indexed */
    assert_recent(f, "a1", 10, "r9,r0,r1");
    assert_recent(f, "a1", 2, "r9,r0");
    assert_recent(f, "a10", 10, "r4");
    assert_recent(f, "a", 10, "");
    assert_recent(f, "", 10, "");
    /* a start refused as a replay (HR_CONFLICT) adds no index entry */
    {
        struct start_arg s = {&f->e, cJSON_Parse("{\"steps\":[{\"action\":\"delay\",\"duration\":\"1 day\"}]}"),
                              cJSON_Parse("{}"), "r1", "a1", 1};
        struct herr err;
        herr_clear(&err);
        assert_int_equal(store_write(f->s, start_tx, &s, &err), HR_CONFLICT);
        cJSON_Delete(s.def);
        cJSON_Delete(s.ctx);
    }
    assert_recent(f, "a1", 10, "r9,r0,r1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_text),
        cmocka_unit_test(test_duration_iso),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_duration_rejects_nan),
        cmocka_unit_test(test_validate_valid),
        cmocka_unit_test(test_validate_if_with_refs),
        cmocka_unit_test(test_validate_required_fields),
        cmocka_unit_test(test_validate_index_and_shape),
        cmocka_unit_test(test_step_types_table),
        cmocka_unit_test_setup_teardown(test_run_delay_then_update_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_cancel_by_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_if, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_first_send_taken_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_first_send_list_taken_at_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trigger_once_per_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_data_from_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trigger_event_builds_data_only_when_linked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_runs_recent, setup, teardown),
    };
    log_set_level(getenv("TEST_LOG") ? LOG_DEBUG : LOG_OFF);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
