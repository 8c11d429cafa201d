/* temp_store.h: a fresh SQLite store in its own temporary directory for unit tests, and
 * its removal (the database, its -wal, -shm and .lock files, then the directory). */
#ifndef HERALD_TESTS_UNIT_TEMP_STORE_H
#define HERALD_TESTS_UNIT_TEMP_STORE_H

#include "../../src/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct temp_store {
    char dir[64];
    char path[128];
};

/* temp_store_open: a new store at <tmp dir>/t.db on clock clk into *out (caller closes
 * it before temp_store_remove). 0, or -1 with the reason on stderr. */
static inline int temp_store_open(struct temp_store *ts, struct hclock *clk, struct store **out)
{
    char dsn[160];
    struct herr err;
    herr_clear(&err);
    snprintf(ts->dir, sizeof ts->dir, "/tmp/herald-tu-XXXXXX");
    if (!mkdtemp(ts->dir))
        return -1;
    snprintf(ts->path, sizeof ts->path, "%s/t.db", ts->dir);
    snprintf(dsn, sizeof dsn, "sqlite:%s", ts->path);
    if (store_open(dsn, clk, out, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline void temp_store_remove(const struct temp_store *ts)
{
    static const char *const sfx[] = {"", "-wal", "-shm", ".lock"};
    char p[160];
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(p, sizeof p, "%s%s", ts->path, sfx[i]);
        unlink(p);
    }
    rmdir(ts->dir);
}

#endif
