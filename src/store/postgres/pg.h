/* pg.h: the PostgreSQL backend of the store (DSN "postgres://..." or "postgresql://...",
 * handed to libpq as is). Callers go through store_open()/store_* in ../store.h; only
 * store.c names this table. */
#ifndef HERALD_STORE_POSTGRES_PG_H
#define HERALD_STORE_POSTGRES_PG_H

#include "../store.h"

/* pg_store_ops: the backend table for postgres:// DSNs. Every op keeps the contract in
 * store.h; the store may be shared by several herald nodes. Per store: a bounded pool
 * of connections (HERALD_PG_POOL, default 8) used by reads and writes from any thread,
 * and one listener thread that LISTENs for other nodes' new jobs. Static storage. */
extern const struct store_ops pg_store_ops;

/* pg_set_job_listener: the PostgreSQL way of store_set_job_listener (on_jobs is called
 * from every committing thread and from the listener thread, so the swap takes a lock
 * that every call holds). Once it returns, the previous listener is not running and will
 * not be called again, except when called from inside that listener itself. s must be a
 * pg store. */
void pg_set_job_listener(struct store *s, void (*fn)(void *), void *arg);

#endif
