/* test_prefs.c: src/engine/prefs.c over a real SQLite store: the unsubscribe tokens
 * (round trip, every kind of tampering, expiry only when configured), the decision the
 * route stage takes for each combination of topic default and user status (REQUIRED wins,
 * custom routing, message.preferences over the template's topic, links only with a public
 * URL), and the input checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../temp_store.h"
#include "../../../src/engine/prefs.h"
#include "../../../src/store/store.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1800000000000LL
#define DAY (86400LL * 1000)

struct fx {
    struct temp_store ts;
    struct hclock_manual clk;
    struct store *s;
    struct engine e;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    hclock_manual_init(&f->clk, T0);
    if (temp_store_open(&f->ts, &f->clk.base, &f->s) < 0)
        return -1;
    f->e.store = f->s;
    f->e.clock = &f->clk.base;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    temp_store_remove(&f->ts);
    free(f);
    return 0;
}

struct put {
    const char *coll, *id, *body;
};

static int put_tx(struct store_txn *t, void *varg)
{
    struct put *p = varg;
    return store_doc_put(t, p->coll, str_c(p->id), str_c(p->body), T0, NULL);
}

static void put(struct fx *f, const char *coll, const char *id, const char *body)
{
    struct put p = {coll, id, body};
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, put_tx, &p, &err), HR_OK);
}

static void test_tokens(void **state)
{
    struct fx *f = *state;
    char tok[PREFS_TOKEN_MAX], bad[PREFS_TOKEN_MAX + 8], uid[PREFS_USER_ID_MAX + 1],
        tid[PREFS_TOPIC_ID_MAX + 1];
    size_t n;
    assert_int_equal(prefs_token_make(f->s, T0, str_c("ada@x"), str_c("news"), tok, sizeof tok),
                     HR_OK);
    assert_int_equal(prefs_token_parse(f->s, T0, 0, str_c(tok), uid, tid), HR_OK);
    assert_string_equal(uid, "ada@x");
    assert_string_equal(tid, "news");
    /* the secret is made once: a second token for the same input verifies the same way */
    assert_int_equal(prefs_token_make(f->s, T0, str_c("ada@x"), str_c("news"), bad, sizeof bad),
                     HR_OK);
    assert_string_equal(bad, tok);
    /* every single-character change, every truncation, and appended bytes fail */
    n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        snprintf(bad, sizeof bad, "%s", tok);
        bad[i] = bad[i] == 'a' ? 'b' : 'a';
        assert_int_equal(prefs_token_parse(f->s, T0, 0, str_c(bad), uid, tid), HR_NOTFOUND);
        assert_int_equal(prefs_token_parse(f->s, T0, 0, (struct str){tok, i}, uid, tid),
                         HR_NOTFOUND);
    }
    snprintf(bad, sizeof bad, "%s0", tok);
    assert_int_equal(prefs_token_parse(f->s, T0, 0, str_c(bad), uid, tid), HR_NOTFOUND);
    /* expiry only when configured */
    assert_int_equal(prefs_token_parse(f->s, T0 + 3650 * DAY, 0, str_c(tok), uid, tid), HR_OK);
    assert_int_equal(prefs_token_parse(f->s, T0 + DAY, 86400, str_c(tok), uid, tid), HR_OK);
    assert_int_equal(prefs_token_parse(f->s, T0 + DAY + 1000, 86400, str_c(tok), uid, tid),
                     HR_NOTFOUND);
    /* ids a token cannot hold */
    assert_int_equal(prefs_token_make(f->s, T0, str_c(""), str_c("news"), tok, sizeof tok),
                     HR_INVAL);
    assert_int_equal(prefs_token_make(f->s, T0, str_c("u"), str_c("a b"), tok, sizeof tok),
                     HR_INVAL);
}

/* decide: the decision for user uid on a message spec (JSON) with template tmpl (JSON or
 * NULL); returns d's status, and "FILTERED" when filtered. */
static const char *decide(struct fx *f, const char *uid, const char *spec, const char *tmpl,
                          struct prefs_decision *d)
{
    cJSON *s = cJSON_Parse(spec), *t = tmpl ? cJSON_Parse(tmpl) : NULL;
    assert_int_equal(prefs_decide(&f->e, s, t, uid, d), HR_OK);
    cJSON_Delete(s);
    cJSON_Delete(t);
    return d->filtered ? "FILTERED" : d->status;
}

static void test_decide(void **state)
{
    struct fx *f = *state;
    struct prefs_decision d;
    static const struct {
        const char *topic, *user, *want;
    } cases[] = {
        {"OPTED_IN", NULL, "OPTED_IN"},
        {"OPTED_IN", "OPTED_OUT", "FILTERED"},
        {"OPTED_OUT", NULL, "FILTERED"},
        {"OPTED_OUT", "OPTED_IN", "OPTED_IN"},
        {"REQUIRED", "OPTED_OUT", "REQUIRED"},
        {NULL, "OPTED_OUT", "FILTERED"},   /* a topic no document defines */
        {NULL, NULL, "OPTED_IN"},
    };
    char body[256], uid[16], spec[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(uid, sizeof uid, "u%zu", i);
        snprintf(spec, sizeof spec, "{\"preferences\":{\"subscription_topic_id\":\"t%zu\"}}", i);
        if (cases[i].topic) {
            char tid[16];
            snprintf(body, sizeof body, "{\"default_status\":\"%s\"}", cases[i].topic);
            snprintf(tid, sizeof tid, "t%zu", i);
            put(f, PREFS_COLL_TOPICS, tid, body);
        }
        if (cases[i].user) {
            snprintf(body, sizeof body, "{\"t%zu\":{\"status\":\"%s\"}}", i, cases[i].user);
            put(f, PREFS_COLL_USERS, uid, body);
        }
        assert_string_equal(decide(f, uid, spec, NULL, &d), cases[i].want);
        assert_string_equal(d.unsub_url, ""); /* no public URL */
        prefs_decision_cleanup(&d);
    }
    /* no topic at all: nothing decided */
    assert_string_equal(decide(f, "u1", "{}", NULL, &d), "OPTED_IN");
    assert_string_equal(d.topic_id, "");
    /* the template's topic, and message.preferences over it */
    put(f, PREFS_COLL_USERS, "tm", "{\"promo\":{\"status\":\"OPTED_OUT\"}}");
    assert_string_equal(decide(f, "tm", "{}", "{\"subscription\":{\"topic_id\":\"promo\"}}", &d),
                        "FILTERED");
    assert_string_equal(
        decide(f, "tm", "{\"preferences\":{\"subscription_topic_id\":\"other\"}}",
               "{\"subscription\":{\"topic_id\":\"promo\"}}", &d),
        "OPTED_IN");
    assert_string_equal(d.topic_id, "other");
    /* custom routing only when has_custom_routing */
    put(f, PREFS_COLL_USERS, "cr",
        "{\"a\":{\"status\":\"OPTED_IN\",\"has_custom_routing\":true,\"custom_routing\":[\"sms\"]},"
        "\"b\":{\"status\":\"OPTED_IN\",\"has_custom_routing\":false,\"custom_routing\":[\"sms\"]}}");
    decide(f, "cr", "{\"preferences\":{\"subscription_topic_id\":\"a\"}}", NULL, &d);
    assert_true(prefs_channel_allowed(&d, "sms"));
    assert_false(prefs_channel_allowed(&d, "email"));
    prefs_decision_cleanup(&d);
    decide(f, "cr", "{\"preferences\":{\"subscription_topic_id\":\"b\"}}", NULL, &d);
    assert_true(prefs_channel_allowed(&d, "email"));
    prefs_decision_cleanup(&d);
    /* links: with a public URL, for a user, not for REQUIRED */
    char lu[PREFS_URL_MAX + 320], u2[PREFS_USER_ID_MAX + 1], t2[PREFS_TOPIC_ID_MAX + 1];
    f->e.public_url = "https://h.test/";
    f->e.unsub_mailto = "u@h.test";
    decide(f, "tm", "{\"preferences\":{\"subscription_topic_id\":\"other\"}}", NULL, &d);
    assert_true(strncmp(d.unsub_url, "https://h.test/u/", 17) == 0);
    assert_int_equal(prefs_token_parse(f->s, T0, 0, str_c(d.unsub_url + 17), u2, t2), HR_OK);
    assert_string_equal(u2, "tm");
    assert_string_equal(t2, "other");
    prefs_list_unsubscribe(&f->e, &d, lu, sizeof lu);
    assert_non_null(strstr(lu, ">, <mailto:u@h.test?subject=unsubscribe>"));
    decide(f, "u4", "{\"preferences\":{\"subscription_topic_id\":\"t4\"}}", NULL, &d);
    assert_string_equal(d.status, "REQUIRED");
    assert_string_equal(d.unsub_url, "");
    f->e.public_url = NULL;
    f->e.unsub_mailto = NULL;
}

struct set {
    const char *uid, *tid, *topic;
};

static int set_tx(struct store_txn *t, void *varg)
{
    struct set *a = varg;
    cJSON *v = cJSON_Parse(a->topic);
    int rc = prefs_user_set(t, str_c(a->uid), str_c(a->tid), v, T0);
    cJSON_Delete(v);
    return rc;
}

static const cJSON *item_of(const cJSON *items, const char *tid)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items) if (!strcmp(json_str(it, "topic_id"), tid)) return it;
    return NULL;
}

/* a status alone (the hosted page) keeps the stored custom routing; a full PUT replaces it;
 * a link too long for a header line is not made */
static void test_user_set(void **state)
{
    struct fx *f = *state;
    struct herr err;
    cJSON *items = NULL;
    struct prefs_decision d;
    char uid[300];
    struct set sets[] = {
        {"ann", "news", "{\"status\":\"OPTED_IN\",\"has_custom_routing\":true,\"custom_routing\":[\"sms\"]}"},
        {"ann", "news", "{\"status\":\"OPTED_OUT\"}"},
    };
    herr_clear(&err);
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_write(f->s, set_tx, &sets[i], &err), HR_OK);
    assert_int_equal(prefs_user_topics(f->s, str_c("ann"), &items), HR_OK);
    const cJSON *it = item_of(items, "news");
    assert_non_null(it);
    assert_string_equal(json_str(it, "status"), "OPTED_OUT");
    assert_true(json_bool(it, "has_custom_routing", false));
    assert_string_equal(cJSON_GetArrayItem(json_arr(it, "custom_routing"), 0)->valuestring, "sms");
    cJSON_Delete(items);
    sets[1].topic = "{\"status\":\"OPTED_IN\",\"has_custom_routing\":false}";
    assert_int_equal(store_write(f->s, set_tx, &sets[1], &err), HR_OK);
    assert_int_equal(prefs_user_topics(f->s, str_c("ann"), &items), HR_OK);
    assert_false(json_bool(item_of(items, "news"), "has_custom_routing", true));
    assert_int_equal(cJSON_GetArraySize(json_arr(item_of(items, "news"), "custom_routing")), 0);
    cJSON_Delete(items);

    /* the longest base (200 bytes) with the longest ids: over PREFS_LINK_MAX */
    char base[201], spec[300];
    snprintf(base, sizeof base, "https://h.test/%0185d", 0);
    f->e.public_url = base;
    memset(uid, 'u', 256);
    uid[256] = 0;
    snprintf(spec, sizeof spec, "{\"preferences\":{\"subscription_topic_id\":\"%0128d\"}}", 0);
    decide(f, uid, spec, NULL, &d);
    assert_string_equal(d.unsub_url, "");
    decide(f, "ann", "{\"preferences\":{\"subscription_topic_id\":\"news\"}}", NULL, &d);
    assert_true(strlen(d.unsub_url) > 0 && strlen(d.unsub_url) <= PREFS_LINK_MAX);
    f->e.public_url = NULL;
}

static void test_checks(void **state)
{
    struct herr err;
    static const char *const good[] = {"null", "{}", "{\"subscription_topic_id\":\"a.b:c-d_e\"}",
                                       NULL};
    static const char *const bad[] = {"[]", "{\"subscription_topic_id\":\"a b\"}",
                                      "{\"subscription_topic_id\":7}", "{\"other\":1}", NULL};
    static const char *const good_t[] = {
        "{\"status\":\"OPTED_OUT\"}",
        "{\"status\":\"OPTED_IN\",\"has_custom_routing\":true,\"custom_routing\":[\"email\",\"inbox\"]}",
        NULL};
    static const char *const bad_t[] = {
        "{}", "{\"status\":\"opted_in\"}", "{\"status\":\"OPTED_IN\",\"custom_routing\":[\"fax\"]}",
        "{\"status\":\"OPTED_IN\",\"custom_routing\":\"email\"}",
        "{\"status\":\"OPTED_IN\",\"has_custom_routing\":\"yes\"}", NULL};
    (void)state;
    for (int i = 0; good[i]; i++) {
        cJSON *v = cJSON_Parse(good[i]);
        assert_int_equal(prefs_message_check(v, &err), HR_OK);
        cJSON_Delete(v);
    }
    for (int i = 0; bad[i]; i++) {
        cJSON *v = cJSON_Parse(bad[i]);
        assert_int_equal(prefs_message_check(v, &err), HR_INVAL);
        assert_non_null(strstr(err.msg, "message.preferences"));
        cJSON_Delete(v);
    }
    for (int i = 0; good_t[i]; i++) {
        cJSON *v = cJSON_Parse(good_t[i]);
        assert_int_equal(prefs_topic_pref_check(v, &err), HR_OK);
        cJSON_Delete(v);
    }
    for (int i = 0; bad_t[i]; i++) {
        cJSON *v = cJSON_Parse(bad_t[i]);
        assert_int_equal(prefs_topic_pref_check(v, &err), HR_INVAL);
        cJSON_Delete(v);
    }
    assert_false(prefs_topic_id_valid(str_c("")));
    assert_false(prefs_topic_id_valid(str_c("a/b")));
    assert_true(prefs_topic_id_valid(str_c("Z9")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_set, setup, teardown),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
