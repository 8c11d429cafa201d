/* migrate.c: `herald migrate-store`: the table-by-table copy between two stores through
 * the store's bulk-copy operations, its progress display and the final count check. */
#include "migrate.h"

#include "../util/arena.h"
#include "../util/clock.h"
#include "../util/str.h"

#include <inttypes.h>
#include <string.h>

#define PROGRESS_EVERY_MS 5000
#define BAR_WIDTH 30

struct progress {
    const struct migrate_opts *o;
    int64_t total, done;      /* rows over all tables */
    int64_t last_line_ms;
};

static void progress_show(struct progress *p, const char *table, int64_t t_done,
                          int64_t t_total, bool table_end)
{
    int64_t now = time_mono_ms();
    if (!p->o->progress)
        return;
    if (p->o->tty) {
        int pct = p->total > 0 ? (int)(p->done * 100 / p->total) : 100;
        int fill = p->total > 0 ? (int)(p->done * BAR_WIDTH / p->total) : BAR_WIDTH;
        char bar[BAR_WIDTH + 1];
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        fprintf(p->o->progress, "\r[%s] %3d%% %-16s %" PRId64 "/%" PRId64 "\033[K", bar, pct,
                table, t_done, t_total);
        fflush(p->o->progress);
        return;
    }
    if (!table_end && now - p->last_line_ms < PROGRESS_EVERY_MS)
        return;
    p->last_line_ms = now;
    fprintf(p->o->progress, "migrate: %s %" PRId64 "/%" PRId64 " rows%s (all tables: %" PRId64
            "/%" PRId64 ")\n", table, t_done, t_total, table_end ? ", done" : "", p->done,
            p->total);
    fflush(p->o->progress);
}

struct batch_arg {
    const char *table;
    const struct copy_row *rows;
    size_t n;
};

static int batch_tx(struct store_txn *t, void *varg)
{
    struct batch_arg *b = varg;
    char key[96], val[32];
    int rc = store_copy_insert(t, b->table, b->rows, b->n);
    if (rc < 0)
        return rc;
    snprintf(key, sizeof key, "migrate.%s.last_seq", b->table);
    snprintf(val, sizeof val, "%" PRId64, b->rows[b->n - 1].seq);
    return store_meta_set(t, key, str_c(val));
}

static int reset_tx(struct store_txn *t, void *varg)
{
    char key[96];
    int rc = HR_OK;
    (void)varg;
    for (size_t i = 0; store_copy_tables[i] && rc == HR_OK; i++) {
        snprintf(key, sizeof key, "migrate.%s.last_seq", store_copy_tables[i]->name);
        rc = store_meta_set(t, key, str_c("0"));
    }
    return rc;
}

/* last_seq: where a previous run stopped for table (0: from the start). */
static int64_t last_seq(struct store *dst, const char *table, struct arena *a)
{
    char key[96];
    struct str v;
    int64_t seq = 0;
    snprintf(key, sizeof key, "migrate.%s.last_seq", table);
    if (store_meta_get(dst, key, a, &v) == HR_OK && str_to_i64(v, &seq) == HR_OK && seq > 0)
        return seq;
    return 0;
}

/* copy_table: every remaining batch of one table. */
static int copy_table(struct store *src, struct store *dst, const char *table, int64_t t_total,
                      struct progress *p, struct herr *err)
{
    struct arena *a = arena_new(1 << 20);
    int64_t seq = last_seq(dst, table, a), t_done = 0;
    int rc = HR_OK;
    if (seq > 0 && store_copy_count(dst, table, &t_done) == HR_OK) {
        if (t_done > t_total)
            t_done = t_total;
        p->done += t_done;
    }
    for (;;) {
        struct copy_row *rows = NULL;
        size_t n = 0;
        struct batch_arg b;
        arena_reset(a);
        rc = store_copy_rows(src, table, seq, p->o->batch, a, &rows, &n);
        if (rc < 0) {
            herr_set(err, rc, "reading %s from the source: %s", table, hr_rc_str(rc));
            goto out;
        }
        if (n == 0)
            break;
        b = (struct batch_arg){table, rows, n};
        rc = store_write(dst, batch_tx, &b, err);
        if (rc < 0) {
            if (!err->msg[0])
                herr_set(err, rc, "writing %s to the target: %s", table, hr_rc_str(rc));
            goto out;
        }
        seq = rows[n - 1].seq;
        t_done += (int64_t)n;
        p->done += (int64_t)n;
        if (t_done > t_total)
            t_total = t_done;
        progress_show(p, table, t_done, t_total, false);
        if (n < p->o->batch)
            break;
    }
    progress_show(p, table, t_done, t_total, true);
out:
    arena_free(a);
    return rc;
}

int migrate_store(struct store *src, struct store *dst, const struct migrate_opts *opts,
                  struct herr *err)
{
    struct arena *a = arena_new(4096);
    struct str ws_src = {0}, ws_dst = {0};
    int64_t counts[32] = {0};
    struct progress p = {opts, 0, 0, time_mono_ms()};
    bool mismatch = false;
    int rc;

    herr_clear(err);
    rc = store_meta_get(src, "workspace.created_ms", a, &ws_src);
    if (rc < 0) {
        rc = herr_set(err, rc == HR_NOTFOUND ? HR_INVAL : rc,
                      "the source holds no workspace (has herald ever run on it?)");
        goto out;
    }
    rc = store_meta_get(dst, "workspace.created_ms", a, &ws_dst);
    if (rc == HR_OK && !str_eq(ws_src, ws_dst)) {
        if (!opts->force) {
            rc = herr_set(err, HR_CONFLICT,
                          "the target already holds another workspace (created_ms %.*s, the "
                          "source's is %.*s); use --force to copy into it anyway",
                          (int)ws_dst.len, ws_dst.p, (int)ws_src.len, ws_src.p);
            goto out;
        }
        rc = store_write(dst, reset_tx, NULL, err);
        if (rc < 0)
            goto out;
    } else if (rc < 0 && rc != HR_NOTFOUND) {
        rc = herr_set(err, rc, "cannot read the target's meta: %s", hr_rc_str(rc));
        goto out;
    }
    rc = HR_OK;

    for (size_t i = 0; store_copy_tables[i]; i++) {
        rc = store_copy_count(src, store_copy_tables[i]->name, &counts[i]);
        if (rc < 0) {
            rc = herr_set(err, rc, "counting %s in the source", store_copy_tables[i]->name);
            goto out;
        }
        p.total += counts[i];
    }
    for (size_t i = 0; store_copy_tables[i]; i++) {
        rc = copy_table(src, dst, store_copy_tables[i]->name, counts[i], &p, err);
        if (rc < 0)
            goto out;
    }
    if (opts->progress && opts->tty)
        fputc('\n', opts->progress);

    if (opts->report)
        fprintf(opts->report, "%-18s %12s %12s\n", "TABLE", "SOURCE", "TARGET");
    for (size_t i = 0; store_copy_tables[i]; i++) {
        const char *name = store_copy_tables[i]->name;
        int64_t sn = 0, tn = 0;
        rc = store_copy_count(src, name, &sn);
        if (rc == HR_OK)
            rc = store_copy_count(dst, name, &tn);
        if (rc < 0) {
            rc = herr_set(err, rc, "counting %s", name);
            goto out;
        }
        if (sn != tn)
            mismatch = true;
        if (opts->report)
            fprintf(opts->report, "%-18s %12" PRId64 " %12" PRId64 "  %s\n", name, sn, tn,
                    sn == tn ? "ok" : "MISMATCH");
    }
    if (opts->report)
        fflush(opts->report);
    if (mismatch)
        rc = herr_set(err, HR_CONFLICT, "row counts differ between source and target");
out:
    arena_free(a);
    return rc;
}
