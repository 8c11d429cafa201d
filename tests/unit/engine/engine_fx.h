/* engine_fx.h: helpers shared by the engine's unit tests that drive jobs by hand over a
 * real store (test_automation.c, test_send.c): run what is due, count jobs, put a
 * document. Each asserts (cmocka) on a store error. Include after <cmocka.h>. */
#ifndef HERALD_TESTS_UNIT_ENGINE_FX_H
#define HERALD_TESTS_UNIT_ENGINE_FX_H

#include "../../../src/queue/queue.h"
#include "../../../src/store/store.h"
#include "../../../src/util/arena.h"

#include <cjson/cJSON.h>
#include <string.h>

/* fx_run_jobs: run what is due now until nothing is (at most 50 rounds of 16); returns
 * how many jobs ran. */
static inline size_t fx_run_jobs(struct queue *q)
{
    size_t total = 0, ran;
    for (int i = 0; i < 50; i++) {
        ran = 0;
        assert_int_equal(queue_run_once(q, 16, &ran), 0);
        if (ran == 0)
            break;
        total += ran;
    }
    return total;
}

/* fx_count_jobs: queued or leased jobs of kind in s (the listing lives in a) */
static inline int64_t fx_count_jobs(struct store *s, struct arena *a, const char *kind)
{
    struct job_count *jc = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(store_job_counts(s, a, &jc, &n), HR_OK);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(jc[i].kind, kind))
            total += jc[i].count;
    return total;
}

struct fx_put_doc_arg {
    const char *coll, *id, *body;
    int64_t now;
};

static inline int fx_put_doc_tx(struct store_txn *t, void *varg)
{
    struct fx_put_doc_arg *p = varg;
    return store_doc_put(t, p->coll, str_c(p->id), str_c(p->body), p->now, NULL);
}

/* fx_put_doc: document coll/id = body (JSON), written at now */
static inline void fx_put_doc(struct store *s, int64_t now, const char *coll, const char *id,
                              const char *body)
{
    struct fx_put_doc_arg p = {coll, id, body, now};
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(s, fx_put_doc_tx, &p, &err), HR_OK);
}

/* fx_event_data_tagged: an engine.event_data for tests: the event, marked ("derived":
 * "yes"), so a test sees that data was derived from the stored event, not copied */
static inline cJSON *fx_event_data_tagged(const cJSON *event)
{
    cJSON *d = cJSON_Duplicate(event, 1);
    cJSON_AddStringToObject(d, "derived", "yes");
    return d;
}

/* fx_event_data_tagged_view: fx_event_data_tagged made of references into the event (an
 * engine.event_data_view): used after the event is gone, ASan says so. */
static inline cJSON *fx_event_data_tagged_view(const cJSON *event)
{
    cJSON *d = cJSON_CreateObject();
    for (const cJSON *it = event ? event->child : NULL; it; it = it->next)
        cJSON_AddItemReferenceToObject(d, it->string, (cJSON *)it);
    cJSON_AddStringToObject(d, "derived", "yes");
    return d;
}

/* fx_event_data_tagged_take: the same as an engine.event_data_take (made of the event it
 * takes), marked "taken" too, so a test sees which of the two derived the data. */
static inline cJSON *fx_event_data_tagged_take(cJSON *event)
{
    cJSON_AddStringToObject(event, "derived", "yes");
    cJSON_AddStringToObject(event, "taken", "yes");
    return event;
}

#endif
