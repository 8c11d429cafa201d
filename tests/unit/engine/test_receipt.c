/* test_receipt.c: delivery receipts (src/engine/receipt.c): the status order as a full
 * matrix (every status x every receipt kind), address normalisation, and on a real SQLite
 * store: receipts applied out of order and twice never move a status backwards, a bounce
 * after DELIVERED stays in history, a hard bounce suppresses the address, duplicates by
 * event id are ignored, nonces refuse a replay, and the msgrefs index finds messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../temp_store.h"
#include "../../../src/engine/receipt.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL

static void test_order_matrix(void **state)
{
    static const char *const statuses[] = {"ENQUEUED", "ROUTED", "SENT", "DELIVERED", "OPENED",
                                           "CLICKED", "UNDELIVERABLE", "CANCELED", NULL};
    /* expected next status per [status][kind]: kinds OTHER, DELIVERED, OPENED, CLICKED,
     * BOUNCE_SOFT, BOUNCE_HARD, COMPLAINT; NULL: stays */
    static const char *const want[][7] = {
        /* ENQUEUED */ {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        /* ROUTED */ {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        /* SENT */ {NULL, "DELIVERED", "OPENED", "CLICKED", "UNDELIVERABLE", "UNDELIVERABLE", "DELIVERED"},
        /* DELIVERED */ {NULL, NULL, "OPENED", "CLICKED", NULL, NULL, NULL},
        /* OPENED */ {NULL, NULL, NULL, "CLICKED", NULL, NULL, NULL},
        /* CLICKED */ {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        /* UNDELIVERABLE */ {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        /* CANCELED */ {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    };
    (void)state;
    for (int s = 0; statuses[s]; s++)
        for (int k = RECEIPT_OTHER; k <= RECEIPT_COMPLAINT; k++) {
            const char *code = "x";
            const char *got = receipt_next_status(str_c(statuses[s]), k, &code);
            if ((got == NULL) != (want[s][k] == NULL) || (got && strcmp(got, want[s][k])))
                fail_msg("%s + %s: got %s, want %s", statuses[s], receipt_kind_name(k),
                         got ? got : "(stays)", want[s][k] ? want[s][k] : "(stays)");
            if (got && !strcmp(got, "UNDELIVERABLE"))
                assert_string_equal(code, k == RECEIPT_BOUNCE_HARD ? "hard" : "soft");
            else
                assert_null(code);
        }
    /* the order itself */
    assert_true(receipt_rank(str_c("SENT")) < receipt_rank(str_c("DELIVERED")));
    assert_true(receipt_rank(str_c("DELIVERED")) < receipt_rank(str_c("OPENED")));
    assert_true(receipt_rank(str_c("OPENED")) < receipt_rank(str_c("CLICKED")));
    assert_int_equal(receipt_rank(str_c("UNDELIVERABLE")), 0);
}

static void test_normalize(void **state)
{
    char out[SUPPRESSION_ADDRESS_MAX + 1], big[400];
    (void)state;
    assert_true(receipt_normalize_address("Ann.Lee@Example.COM", out, sizeof out));
    assert_string_equal(out, "ann.lee@example.com");
    assert_true(receipt_normalize_address("+1 (555) 000-9999", out, sizeof out));
    assert_string_equal(out, "+15550009999");
    assert_false(receipt_normalize_address("", out, sizeof out));
    assert_false(receipt_normalize_address(" - ", out, sizeof out));
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(receipt_normalize_address(big, out, sizeof out));
}

/* ---- on a store --------------------------------------------------------------------------- */

struct fx {
    struct temp_store ts;
    struct hclock_manual clk;
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    hclock_manual_init(&f->clk, T0);
    if (temp_store_open(&f->ts, &f->clk.base, &f->s) < 0)
        return -1;
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

struct seed_arg {
    const char *id, *ref;
};

static int seed_tx(struct store_txn *t, void *arg)
{
    struct seed_arg *s = arg;
    struct message_rec m = {.id = str_c(s->id), .request_id = str_c(s->id),
                            .status = STR_LIT("SENT"), .recipient = STR_LIT("u1"),
                            .spec = STR_LIT("{}"), .state = STR_LIT("{}"), .tags = STR_LIT("[]"),
                            .enqueued_ms = T0, .sent_ms = T0, .updated_ms = T0};
    struct msgref_rec r = {STR_LIT("sendgrid"), str_c(s->ref), str_c(s->id), STR_LIT("email"), T0};
    int rc = store_message_insert(t, &m);
    return rc < 0 ? rc : store_msgref_put(t, &r);
}

struct apply_arg {
    struct receipt_event ev;
    bool found, dup;
};

static int apply_tx(struct store_txn *t, void *arg)
{
    struct apply_arg *a = arg;
    return engine_receipt_apply(t, &a->ev, T0 + 1000, &a->found, &a->dup);
}

static void apply(struct fx *f, const char *ref, int kind, const char *event, const char *event_id,
                  bool *found, bool *dup)
{
    struct apply_arg a;
    struct herr err;
    memset(&a, 0, sizeof a);
    herr_clear(&err);
    snprintf(a.ev.provider, sizeof a.ev.provider, "sendgrid");
    snprintf(a.ev.provider_id, sizeof a.ev.provider_id, "sg1");
    snprintf(a.ev.reference, sizeof a.ev.reference, "%s", ref);
    snprintf(a.ev.event, sizeof a.ev.event, "%s", event);
    snprintf(a.ev.event_id, sizeof a.ev.event_id, "%s", event_id);
    snprintf(a.ev.address, sizeof a.ev.address, "Zed@Example.com");
    a.ev.kind = kind;
    assert_int_equal(store_write(f->s, apply_tx, &a, &err), HR_OK);
    *found = a.found;
    *dup = a.dup;
}

static const char *status_of(struct fx *f, struct arena *a, const char *id)
{
    struct message_rec m;
    assert_int_equal(store_message_get(f->s, str_c(id), a, &m), HR_OK);
    return m.status.p;
}

static void test_apply(void **state)
{
    struct fx *f = *state;
    struct arena *a = arena_new(4096);
    struct seed_arg s1 = {"1-m1", "ref-one"}, s2 = {"1-m2", "ref-two"};
    struct history_rec *h;
    struct msgref_rec r;
    size_t n;
    bool found, dup;
    char addr[SUPPRESSION_ADDRESS_MAX + 1];
    cJSON *profile;
    struct herr err;
    herr_clear(&err);

    assert_int_equal(store_write(f->s, seed_tx, &s1, &err), HR_OK);
    assert_int_equal(store_write(f->s, seed_tx, &s2, &err), HR_OK);
    assert_int_equal(store_msgref_get(f->s, STR_LIT("sendgrid"), STR_LIT("ref-two"), a, &r), HR_OK);
    assert_string_equal(r.message_id.p, "1-m2");
    assert_string_equal(r.channel.p, "email");
    assert_int_equal(store_msgref_get(f->s, STR_LIT("postmark"), STR_LIT("ref-two"), a, &r),
                     HR_NOTFOUND);

    /* out of order: open first, then delivered: OPENED stays */
    apply(f, "ref-one", RECEIPT_OPENED, "open", "e1", &found, &dup);
    assert_true(found);
    assert_false(dup);
    assert_string_equal(status_of(f, a, "1-m1"), "OPENED");
    apply(f, "ref-one", RECEIPT_DELIVERED, "delivered", "e2", &found, &dup);
    assert_string_equal(status_of(f, a, "1-m1"), "OPENED");
    /* the same event again: a duplicate, no row */
    apply(f, "ref-one", RECEIPT_DELIVERED, "delivered", "e2", &found, &dup);
    assert_true(dup);
    /* a hard bounce after delivery: history, status stays, address suppressed */
    apply(f, "ref-one", RECEIPT_BOUNCE_HARD, "bounce", "e3", &found, &dup);
    assert_string_equal(status_of(f, a, "1-m1"), "OPENED");
    assert_int_equal(store_history_list(f->s, str_c("1-m1"), STR_NULL, a, &h, &n), HR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(h[0].type.p, "OPENED");
    assert_string_equal(h[1].type.p, "DELIVERED");
    assert_string_equal(h[2].type.p, "UNDELIVERABLE");
    assert_non_null(strstr(h[2].body.p, "\"event\":\"bounce\""));
    assert_non_null(strstr(h[2].body.p, "\"reasonCode\":\"hard\""));
    assert_non_null(strstr(h[2].body.p, "\"status_changed\":false"));
    profile = cJSON_Parse("{\"email\":\"zed@EXAMPLE.com\"}");
    assert_int_equal(engine_suppressed(f->s, "email", profile, addr, sizeof addr), 1);
    assert_string_equal(addr, "zed@example.com");
    assert_int_equal(engine_suppressed(f->s, "sms", profile, addr, sizeof addr), 0);
    cJSON_Delete(profile);

    /* a soft bounce while SENT ends the message; a later delivered cannot revive it */
    apply(f, "ref-two", RECEIPT_BOUNCE_SOFT, "bounce", "e4", &found, &dup);
    assert_string_equal(status_of(f, a, "1-m2"), "UNDELIVERABLE");
    apply(f, "ref-two", RECEIPT_CLICKED, "click", "e5", &found, &dup);
    assert_string_equal(status_of(f, a, "1-m2"), "UNDELIVERABLE");

    /* a reference nobody sent: acknowledged, nothing found */
    apply(f, "ref-unknown", RECEIPT_DELIVERED, "delivered", "e6", &found, &dup);
    assert_false(found);
    arena_free(a);
}

struct seen_arg {
    const char *nonce;
};

static int seen_tx(struct store_txn *t, void *arg)
{
    return engine_receipt_seen(t, "sg1", ((struct seen_arg *)arg)->nonce, T0);
}

static void test_seen(void **state)
{
    struct fx *f = *state;
    struct seen_arg s = {"sig:abc"}, o = {"sig:abd"};
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, seen_tx, &s, &err), HR_OK);
    assert_int_equal(store_write(f->s, seen_tx, &s, &err), HR_CONFLICT);
    assert_int_equal(store_write(f->s, seen_tx, &o, &err), HR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_matrix),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seen, setup, teardown),
    };
    log_set_level(LOG_ERROR);
    return cmocka_run_group_tests_name("engine/receipt", tests, NULL, NULL);
}
