/* sqlite.h: the SQLite backend of the store (DSN "sqlite:PATH"). Callers go through
 * store_open()/store_* in ../store.h; only store.c names this table. */
#ifndef HERALD_STORE_SQLITE_SQLITE_H
#define HERALD_STORE_SQLITE_SQLITE_H

#include "../store.h"

/* sqlite_store_ops: the backend table for "sqlite:PATH" DSNs. Every op keeps the
 * contract in store.h. Per store: one writer thread runs all writes (group commit),
 * reads run on a bounded pool of reader connections; both may be used from any thread.
 * Static storage, never freed. */
extern const struct store_ops sqlite_store_ops;

#endif
