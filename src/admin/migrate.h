/* migrate.h: `herald migrate-store`: copy a whole installation from one store to
 * another (SQLite to PostgreSQL, or back), resumable, with progress and a count check. */
#ifndef HERALD_ADMIN_MIGRATE_H
#define HERALD_ADMIN_MIGRATE_H

#include "../store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct migrate_opts {
    size_t batch;        /* rows per batch (one target transaction); 1..10000 */
    bool force;          /* copy even when the target holds a different workspace */
    FILE *progress;      /* where progress goes (stderr); a bar when it is a terminal */
    bool tty;            /* draw a bar rather than lines */
    FILE *report;        /* where the count table goes (stdout) */
};

/* migrate_store: copy every table of src into dst table by table, batch by batch, each
 * batch one transaction on dst that also records `migrate.<table>.last_seq` in dst's
 * meta, so a rerun resumes after the last committed batch. Then compares the row counts
 * of every table and prints them to opts->report. Returns HR_OK when every count
 * matches, HR_CONFLICT when dst holds another workspace (and !force) or a count
 * differs, another rc on a store failure (err says which). Single-threaded caller. */
int migrate_store(struct store *src, struct store *dst, const struct migrate_opts *opts,
                  struct herr *err);

#endif
